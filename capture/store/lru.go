package store

import (
	"container/list"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// known remembers, for recently used streams, the stream's last revision and
// the source position of its last event (everything at or before it is
// stored). Not safe for concurrent use (the appender's mutex guards it).
type known struct {
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type knownEntry struct {
	stream string
	rev    uint64
	tail   contract.Pos
}

func newKnown(max int) *known {
	return &known{max: max, ll: list.New(), items: make(map[string]*list.Element)}
}

func (k *known) get(stream string) (rev uint64, tail contract.Pos, ok bool) {
	if e, ok := k.items[stream]; ok {
		k.ll.MoveToFront(e)
		v := e.Value.(*knownEntry)
		return v.rev, v.tail, true
	}
	return 0, contract.Pos{}, false
}

func (k *known) put(stream string, rev uint64, tail contract.Pos) {
	if e, ok := k.items[stream]; ok {
		v := e.Value.(*knownEntry)
		v.rev, v.tail = rev, tail
		k.ll.MoveToFront(e)
		return
	}
	k.items[stream] = k.ll.PushFront(&knownEntry{stream, rev, tail})
	if k.ll.Len() > k.max {
		old := k.ll.Back()
		k.ll.Remove(old)
		delete(k.items, old.Value.(*knownEntry).stream)
	}
}

func (k *known) forget(stream string) {
	if e, ok := k.items[stream]; ok {
		k.ll.Remove(e)
		delete(k.items, stream)
	}
}
