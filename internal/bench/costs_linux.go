package bench

import (
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// costPages is the size of each trial of [machineCosts]: 16 MiB.
const costPages = 4096

// machineCosts measures what every sandbox start pays many times over on
// this machine (medians of five trials): the page fault a process takes on
// the first write to each page of a fresh anonymous mapping, the same
// pages made present by one madvise(MADV_POPULATE_WRITE) call instead
// (the kernel's work without the trap: their difference is the cost of
// the trap itself, which virtual machines that shadow page tables make
// dear), and a system call (getppid). A fork server's sandbox is forked
// from a large interpreter and takes a thousand or so copy-on-write faults
// before its first result; a fresh interpreter takes more. Zero where the
// kernel refuses (MADV_POPULATE_WRITE needs Linux 5.14).
func machineCosts() (fault, populate, syscall time.Duration) {
	var faults, pops, calls []time.Duration
	for range 5 {
		faults = append(faults, perPage(func(m []byte) error {
			for off := 0; off < len(m); off += 4096 {
				m[off] = 1
			}
			return nil
		}))
		pops = append(pops, perPage(func(m []byte) error { return unix.Madvise(m, unix.MADV_POPULATE_WRITE) }))
		const n = 10000
		t := time.Now()
		for range n {
			unix.Getppid()
		}
		calls = append(calls, time.Since(t)/n)
	}
	return median(faults), median(pops), median(calls)
}

// perPage maps costPages fresh pages, times fn on them, and returns the
// time per page (0 if the mapping or fn failed).
func perPage(fn func([]byte) error) time.Duration {
	m, err := unix.Mmap(-1, 0, costPages*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0
	}
	defer unix.Munmap(m)
	t := time.Now()
	if fn(m) != nil {
		return 0
	}
	return time.Since(t) / costPages
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}
