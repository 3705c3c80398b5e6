package nfstate

import (
	"errors"
	"math"
	"sync"
	"time"
)

// Reader reads namespaces' states, each at most once a second: a storm of
// drops asks the same question many times, and every read lists every
// chain and runs nft.
type Reader struct {
	// In runs fn on a thread inside the namespace with that inode.
	In func(inode uint32, fn func() error) error
	// Brackets are the priorities of the netfilter link brackets
	// (probe.Priorities): a packet that passed bracket i and no other
	// died in a chain before bracket i+1.
	Brackets [8]int32
	// Bracket is the priority of the bracket named by its table at a
	// hook (probe.BracketPriority).
	Bracket func(hook, table string) (int32, bool)

	mu    sync.Mutex
	cache map[uint32]cached
}

type cached struct {
	st         *State
	err        error
	expires    time.Time
	refreshing bool
}

const ttl = time.Second

// Find answers q in the namespace, bounding the priorities by the
// bracket q.Bracket names.
func (r *Reader) Find(inode uint32, q Query) (*Finding, error) {
	st, err := r.state(inode)
	if err != nil {
		return nil, err
	}
	if q.Bracket != "" && r.Bracket != nil {
		q.Lo, q.Bounded = r.Bracket(q.Hook, q.Bracket)
	}
	return st.Find(q.Within(r.Brackets)), nil
}

// Within sets q.Hi, when q.Bounded, to the bracket after q.Lo.
func (q Query) Within(brackets [8]int32) Query {
	if q.Bounded {
		q.Hi = math.MaxInt32
		for _, b := range brackets {
			if b > q.Lo {
				q.Hi = b
				break
			}
		}
	}
	return q
}

// NetfilterFind is Find under the name package cause asks for.
func (r *Reader) NetfilterFind(inode uint32, q Query) (*Finding, error) { return r.Find(inode, q) }

// state is the namespace's state. An answer older than ttl is still
// used while one goroutine reads it afresh: a read lists every chain and
// runs nft (milliseconds), which a storm of drops must not wait for.
func (r *Reader) state(inode uint32) (*State, error) {
	now := time.Now()
	r.mu.Lock()
	c, ok := r.cache[inode]
	stale := ok && !now.Before(c.expires) && !c.refreshing
	if stale {
		c.refreshing = true
		r.cache[inode] = c
	}
	r.mu.Unlock()
	switch {
	case stale:
		go r.read(inode)
		return c.st, c.err
	case ok:
		return c.st, c.err
	}
	return r.read(inode)
}

func (r *Reader) read(inode uint32) (*State, error) {
	var st *State
	err := r.In(inode, func() error {
		var err error
		st, err = Read()
		return err
	})
	if st == nil && err == nil {
		err = errors.New("netfilter state not read")
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) > 1024 {
		r.cache = map[uint32]cached{}
	}
	r.cache[inode] = cached{st: st, err: err, expires: time.Now().Add(ttl)}
	r.mu.Unlock()
	return st, err
}

// Forget drops what is known of a namespace whose tables changed (a
// table watch heard it), so that the next drop reads them afresh rather
// than name a table that is gone or miss a new one for up to ttl.
func (r *Reader) Forget(inode uint32) {
	r.mu.Lock()
	delete(r.cache, inode)
	r.mu.Unlock()
}
