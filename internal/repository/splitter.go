package repository

import (
	"fmt"
	_ "unsafe" // for go:linkname

	"github.com/kopia/kopia/repo/splitter"

	"github.com/lifeboat-backup/lifeboat/internal/buzhash"
)

// kopiaSplitters is kopia's registry of splitters by the name a
// repository's format gives. kopia offers no way to register one, and the
// object writer looks its splitter up there by that name, so the
// registry's entries are replaced in place, as the zstd compressors are
// (zstd.go). Should kopia rename it, the build fails at link time.
//
//go:linkname kopiaSplitters github.com/kopia/kopia/repo/splitter.splitterFactories
var kopiaSplitters map[string]splitter.Factory

// buzhashSizes are kopia's DYNAMIC-*-BUZHASH splitters by average size.
var buzhashSizes = map[string]int{
	"DYNAMIC-128K-BUZHASH": 128 << 10,
	"DYNAMIC-256K-BUZHASH": 256 << 10,
	"DYNAMIC-512K-BUZHASH": 512 << 10,
	"DYNAMIC-1M-BUZHASH":   1 << 20,
	"DYNAMIC-2M-BUZHASH":   2 << 20,
	"DYNAMIC-4M-BUZHASH":   4 << 20,
	"DYNAMIC-8M-BUZHASH":   8 << 20,
}

// kopia's buzhash splitters are replaced by package buzhash's: the same
// cuts (its tests compare them with kopia's on every shape of data), 3.8
// times the speed, and a tenth of an initial backup's CPU was kopia's
// splitter. Repositories, old and new, stay byte for byte what they were.
func init() {
	for name, avg := range buzhashSizes {
		if kopiaSplitters[name] == nil {
			panic(fmt.Sprintf("kopia's splitter %s is not registered as expected", name))
		}
		kopiaSplitters[name] = buzhash.Factory(avg)
	}
}
