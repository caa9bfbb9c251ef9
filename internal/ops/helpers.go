package ops

import "path/filepath"

// HelperDir is the helper journal: the helper containers that move a
// remote engine's data, each journalled before it is created.
func (e *Env) HelperDir() string { return filepath.Join(e.StateDir, "helpers") }

// StageDir holds a remote engine's data while a backup reads it.
func (e *Env) StageDir() string { return filepath.Join(e.StateDir, "stage") }
