// Command scalegen writes the data sets of scripts/bench-scale: many small
// files fast, in a deterministic tree (one seed, one tree), which a shell
// loop would take many minutes to make.
//
//	scalegen files DIR N [SEED]      N files of 0-82 bytes (41 on average), 1000 to a folder
//	scalegen volumes DIR...          a few small files in each DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "files":
		if len(os.Args) < 4 {
			usage()
		}
		n, perr := strconv.Atoi(os.Args[3])
		if perr != nil || n < 1 {
			usage()
		}
		err = files(os.Args[2], n, seedArg(4))
	case "volumes":
		err = volumes(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: scalegen files DIR N [SEED] | scalegen volumes DIR...")
	os.Exit(2)
}

func seedArg(i int) uint64 {
	if len(os.Args) <= i {
		return 1
	}
	s, err := strconv.ParseUint(os.Args[i], 10, 64)
	if err != nil {
		usage()
	}
	return s
}

// mix is splitmix64: each file's size and bytes depend on the seed and its
// number only, so the workers may write in any order.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \n"

// content is file i's bytes: mostly text, as small files are (configs,
// caches, maildirs), so that it compresses as such files do.
func content(seed uint64, i int) []byte {
	h := mix(seed<<32 ^ uint64(i))
	b := make([]byte, h%83)
	for j := range b {
		if j%8 == 0 {
			h = mix(h)
		}
		b[j] = alphabet[(h>>(8*(j%8)))%uint64(len(alphabet))]
	}
	return b
}

// relPath puts 1000 files in a folder and 100 folders in a folder above
// it: 1,000,000 files make 10 × 100 folders of 1000.
func relPath(i int) string {
	return filepath.Join(fmt.Sprintf("d%03d", i/100000), fmt.Sprintf("d%02d", i/1000%100), fmt.Sprintf("f%06d", i))
}

func files(root string, n int, seed uint64) error {
	for d := 0; d < n; d += 1000 {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, relPath(d))), 0o755); err != nil {
			return err
		}
	}
	const workers = 4
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := os.WriteFile(filepath.Join(root, relPath(i)), content(seed, i), 0o644); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// volumes gives each folder a few small files and a subfolder, as a small
// application's volume holds.
func volumes(dirs []string) error {
	for k, d := range dirs {
		if err := os.MkdirAll(filepath.Join(d, "conf"), 0o755); err != nil {
			return err
		}
		for i := range 5 {
			name := filepath.Join(d, fmt.Sprintf("data%d", i))
			if i == 4 {
				name = filepath.Join(d, "conf", "settings")
			}
			if err := os.WriteFile(name, content(uint64(k+1), i), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
