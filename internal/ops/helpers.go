package ops

import "path/filepath"

// HelperDir is the helper journal: the helper containers that move a
// remote engine's data, each journalled before it is created.
func (e *Env) HelperDir() string { return filepath.Join(e.StateDir, "helpers") }
