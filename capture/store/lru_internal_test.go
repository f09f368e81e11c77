package store

import (
	"container/list"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// refKnown is the LRU as container/list gives it: the reference known is
// held to.
type refKnown struct {
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type refEntry struct {
	stream string
	rev    uint64
}

func (k *refKnown) get(s string) (uint64, bool) {
	if e, ok := k.items[s]; ok {
		k.ll.MoveToFront(e)
		return e.Value.(*refEntry).rev, true
	}
	return 0, false
}

func (k *refKnown) put(s string, rev uint64) {
	if e, ok := k.items[s]; ok {
		e.Value.(*refEntry).rev = rev
		k.ll.MoveToFront(e)
		return
	}
	k.items[s] = k.ll.PushFront(&refEntry{s, rev})
	if k.ll.Len() > k.max {
		old := k.ll.Back()
		k.ll.Remove(old)
		delete(k.items, old.Value.(*refEntry).stream)
	}
}

func (k *refKnown) forget(s string) {
	if e, ok := k.items[s]; ok {
		k.ll.Remove(e)
		delete(k.items, s)
	}
}

// FuzzKnownIsAnLRU runs the same random gets, puts and forgets on known and
// on a container/list LRU: every answer, and which streams are kept, agree.
func FuzzKnownIsAnLRU(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint16(500))
	f.Add(uint64(7), uint8(1), uint16(2000))
	f.Fuzz(func(t *testing.T, seed uint64, max uint8, ops uint16) {
		size := int(max%16) + 1
		k, ref := newKnown(size), &refKnown{max: size, ll: list.New(), items: map[string]*list.Element{}}
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		for op := range int(ops) {
			s := fmt.Sprintf("s-%d", r.IntN(3*size))
			switch r.IntN(3) {
			case 0:
				rev, tail, ok := k.get(s)
				wrev, wok := ref.get(s)
				if ok != wok || rev != wrev || ok && tail.Ordinal != rev {
					t.Fatalf("op %d: get(%s) = %d, %v; want %d, %v", op, s, rev, ok, wrev, wok)
				}
			case 1:
				rev := r.Uint64()
				k.put(s, rev, contract.Pos{Ordinal: rev})
				ref.put(s, rev)
			default:
				k.forget(s)
				ref.forget(s)
			}
			if k.len() != ref.ll.Len() {
				t.Fatalf("op %d: %d streams known; want %d", op, k.len(), ref.ll.Len())
			}
		}
		// Oldest to newest, the same streams.
		i := k.tail
		for e := ref.ll.Back(); e != nil; e = e.Prev() {
			if i < 0 || k.ents[i].stream != e.Value.(*refEntry).stream {
				t.Fatalf("recency order differs at %s", e.Value.(*refEntry).stream)
			}
			i = k.ents[i].prev
		}
	})
}
