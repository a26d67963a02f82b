package tunnel

import "sync"

// parallelMin is the smallest batch worth spreading over the workers;
// smaller batches are handled by the loop alone (the hand-off costs more
// than it saves).
const parallelMin = 16

// pool runs chunks of a batch on worker goroutines (fork-join): the caller
// runs one chunk itself and waits for the others, so the batch stays in
// order.
type pool struct {
	size int
	jobs chan job
	wg   sync.WaitGroup // the workers
}

type job struct {
	fn     func(lo, hi int)
	lo, hi int
	done   *sync.WaitGroup
}

func newPool(size int) *pool {
	return &pool{size: size, jobs: make(chan job, 4*size)}
}

func (p *pool) start() {
	for range p.size - 1 {
		p.wg.Go(func() {
			for j := range p.jobs {
				j.fn(j.lo, j.hi)
				j.done.Done()
			}
		})
	}
}

func (p *pool) stop() {
	close(p.jobs)
	p.wg.Wait()
}

// run calls fn over [0, n) in contiguous chunks, in parallel when n is
// large enough, and returns when all are done. done is the caller's own
// WaitGroup (one per loop, so nothing is allocated).
func (p *pool) run(n int, fn func(lo, hi int), done *sync.WaitGroup) {
	if p.size < 2 || n < parallelMin {
		fn(0, n)
		return
	}
	chunks := min(p.size, n/(parallelMin/2))
	step := (n + chunks - 1) / chunks
	for lo := step; lo < n; lo += step {
		done.Add(1)
		p.jobs <- job{fn: fn, lo: lo, hi: min(lo+step, n), done: done}
	}
	fn(0, step)
	done.Wait()
}
