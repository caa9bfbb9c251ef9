package engine

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killTree kills pid and every process below it. An exec'd process lives
// in the host's PID namespace (lifeboat runs beside the engine, as root),
// but it is no process group leader: `sh -c "sleep 600"` would leave the
// sleep behind if only sh were killed.
//
// Each process dies only once it has no children, and its parent is let
// run until it has reaped it: a process whose parent died first is reaped
// by the container's PID 1, and a PostgreSQL postmaster as PID 1 takes a
// child it reaps killed by a signal for a crashed server and restarts the
// database. Only pid itself is left to the engine's shim to reap. A shell
// let run to reap may start its next command; that one is stopped and
// killed in turn. Past killTimeout (a parent that never reaps), whatever
// is left is killed at once.
func killTree(pid int) {
	deadline := time.Now().Add(killTimeout)
	for time.Now().Before(deadline) {
		t := readTree(pid)
		if len(t.all) == 0 {
			return
		}
		for _, p := range t.all {
			if !t.zombie[p] {
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
		}
		// A zombie's parent runs until it reaps it.
		for _, p := range t.all {
			if t.zombie[p] && p != pid {
				_ = syscall.Kill(t.parent[p], syscall.SIGCONT)
			}
		}
		for _, p := range t.all {
			if len(t.children[p]) == 0 && !t.zombie[p] {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if len(t.children[pid]) == 0 {
			return // pid was a leaf: killed, for its shim to reap
		}
		time.Sleep(5 * time.Millisecond)
	}
	left := readTree(pid).all
	for _, p := range left {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	for _, p := range left {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// killTimeout bounds killTree's careful order.
var killTimeout = 3 * time.Second

// procTree is pid and the processes below it, top down.
type procTree struct {
	all      []int
	parent   map[int]int
	children map[int][]int
	zombie   map[int]bool
}

func readTree(pid int) procTree {
	t := procTree{parent: map[int]int{}, children: map[int][]int{}, zombie: map[int]bool{}}
	state := map[int]byte{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, st := statOf(p); pp > 0 || p == pid {
			t.parent[p], state[p] = pp, st
			t.children[pp] = append(t.children[pp], p)
		}
	}
	if _, ok := state[pid]; !ok {
		return t
	}
	var walk func(int)
	walk = func(p int) {
		t.all = append(t.all, p)
		t.zombie[p] = state[p] == 'Z'
		for _, c := range t.children[p] {
			walk(c)
		}
	}
	walk(pid)
	return t
}

// statOf reads the parent PID and state from /proc/PID/stat; the command
// name may hold spaces and parentheses, so fields are counted after the
// last ')'.
func statOf(pid int) (parent int, state byte) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) == 0 {
		return 0, 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp, f[0][0]
}
