package registrar

import "sync"

// cHandle is a raw C handle (cClient or cDiscovery); its zero value means "freed".
type cHandle interface {
	comparable
	stop(timeoutMs uint32) error
	free()
}

// guarded guards a C pointer for Client and Discovery: every call holds the read lock, so
// freeing (under the write lock) waits for calls in flight and no call can see a freed
// pointer.
type guarded[T cHandle] struct {
	mu     sync.RWMutex
	c      T      // the zero T once freed
	closed *Error // what calls get after Close

	closeMu  sync.Mutex // serializes close
	isClosed bool

	// events is the handle's event channel (events.go), closed once the handle is freed:
	// the library delivers nothing after its stop returns.
	events *eventStream
}

// use runs f with the C handle under the read lock.
func (h *guarded[T]) use(f func(c T) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var freed T
	if h.c == freed {
		return h.closed
	}
	return f(h.c)
}

// close stops (under the read lock, so calls in flight finish and waiters wake up with
// ErrShutDown), then frees under the write lock. Only the first call reports the stop's
// result; closing again returns nil. Called while another close is under way (draining), a
// timeout is passed on to the library first, which cuts that drain short if it ends sooner.
func (h *guarded[T]) close(timeoutMs uint32) error {
	if !h.closeMu.TryLock() {
		if timeoutMs > 0 {
			_ = h.use(func(c T) error { return c.stop(timeoutMs) })
		}
		h.closeMu.Lock()
	}
	defer h.closeMu.Unlock()
	if h.isClosed {
		return nil
	}
	err := h.use(func(c T) error { return c.stop(timeoutMs) })
	h.mu.Lock()
	var freed T
	if h.c != freed {
		h.c.free()
		h.c = freed
	}
	h.mu.Unlock()
	h.isClosed = true
	if h.events != nil {
		h.events.close()
	}
	return err
}
