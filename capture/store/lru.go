package store

import (
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// known remembers, for recently used streams, the stream's last revision and
// the source position of its last event (everything at or before it is
// stored). Not safe for concurrent use (the appender's mutex guards it).
//
// It is a least-recently-used list over a slice of entries linked by index,
// with the evicted entry reused for the new stream: with a stream per row
// (test/bench's bulk load) every append evicts one, and a list element and
// an entry allocated per append were 4% of the appender's CPU, and a
// hundred thousand objects more for every garbage collection to mark.
type known struct {
	max        int
	idx        map[string]int32
	ents       []knownEntry
	head, tail int32   // most and least recently used; -1: none
	free       []int32 // entries of forgotten streams
}

type knownEntry struct {
	stream     string
	rev        uint64
	tail       contract.Pos
	prev, next int32
}

func newKnown(max int) *known {
	return &known{max: max, idx: make(map[string]int32), head: -1, tail: -1}
}

func (k *known) get(stream string) (rev uint64, tail contract.Pos, ok bool) {
	i, ok := k.idx[stream]
	if !ok {
		return 0, contract.Pos{}, false
	}
	k.toFront(i)
	e := &k.ents[i]
	return e.rev, e.tail, true
}

func (k *known) put(stream string, rev uint64, tail contract.Pos) {
	if i, ok := k.idx[stream]; ok {
		e := &k.ents[i]
		e.rev, e.tail = rev, tail
		k.toFront(i)
		return
	}
	var i int32
	switch {
	case len(k.free) > 0:
		i = k.free[len(k.free)-1]
		k.free = k.free[:len(k.free)-1]
	case len(k.idx) < k.max:
		k.ents = append(k.ents, knownEntry{})
		i = int32(len(k.ents) - 1)
	default: // full: the least recently used entry becomes this stream's
		i = k.tail
		k.unlink(i)
		delete(k.idx, k.ents[i].stream)
	}
	k.ents[i] = knownEntry{stream: stream, rev: rev, tail: tail, prev: -1, next: -1}
	k.idx[stream] = i
	k.pushFront(i)
}

func (k *known) forget(stream string) {
	i, ok := k.idx[stream]
	if !ok {
		return
	}
	k.unlink(i)
	delete(k.idx, stream)
	k.ents[i] = knownEntry{}
	k.free = append(k.free, i)
}

func (k *known) len() int { return len(k.idx) }

func (k *known) toFront(i int32) {
	if k.head == i {
		return
	}
	k.unlink(i)
	k.pushFront(i)
}

func (k *known) unlink(i int32) {
	e := &k.ents[i]
	if e.prev >= 0 {
		k.ents[e.prev].next = e.next
	} else {
		k.head = e.next
	}
	if e.next >= 0 {
		k.ents[e.next].prev = e.prev
	} else {
		k.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (k *known) pushFront(i int32) {
	e := &k.ents[i]
	e.prev, e.next = -1, k.head
	if k.head >= 0 {
		k.ents[k.head].prev = i
	}
	k.head = i
	if k.tail < 0 {
		k.tail = i
	}
}
