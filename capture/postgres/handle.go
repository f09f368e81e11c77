package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/chronicler-dev/chronicler/capture/pgvalue"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// handle decodes one pgoutput message and drives the sink.
func (s *Source) handle(ctx context.Context, st *streamState, xld pglogrepl.XLogData) error {
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return &ProtocolError{Err: err}
	}
	lsn := contract.LSN(xld.WALStart)
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		st.inTx, st.begun, st.ordinal = true, false, 0
		st.tx = contract.Tx{XID: m.Xid, CommitLSN: contract.LSN(m.FinalLSN), CommitTime: m.CommitTime.UTC()}
		st.snapBegin(m.Xid)
	case *pglogrepl.OriginMessage:
		st.tx.Origin = m.Name
	case *pglogrepl.RelationMessage:
		rel, err := s.resolveRelation(ctx, st, m)
		if err != nil {
			return err
		}
		if prev := st.relations[m.RelationID]; prev != nil {
			s.columnsChanged(prev, rel, lsn)
		}
		st.relations[m.RelationID] = rel
	case *pglogrepl.TypeMessage:
		// The type may have changed (ALTER TYPE ... ADD VALUE, a new
		// composite): look it up again at the next Relation that uses it.
		s.types.forget(m.DataType)
	case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage, *pglogrepl.TruncateMessage:
		return s.rowChange(ctx, st, msg, lsn)
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == HeartbeatPrefix {
			return nil
		}
		if m.Prefix == SnapshotPrefix {
			return s.snapMessage(ctx, st, m)
		}
		c := &contract.Change{Op: contract.OpMessage, Message: &contract.Message{Prefix: m.Prefix, Content: append([]byte(nil), m.Content...), Transactional: m.Transactional}}
		if m.Transactional {
			return s.emit(ctx, st, c, nil, contract.LSN(m.LSN))
		}
		return s.standaloneMessage(ctx, st, c, contract.LSN(m.LSN))
	case *pglogrepl.CommitMessage:
		if st.begun {
			if err := st.sink.Commit(ctx, st.tx); err != nil {
				return &SinkError{Op: "commit", Err: err}
			}
			s.m.transactions.Inc()
		}
		st.pos.committed(contract.LSN(m.CommitLSN), contract.LSN(m.TransactionEndLSN), st.begun)
		st.snapCommit(contract.LSN(m.CommitLSN))
		st.inTx, st.begun = false, false
		st.lastData = time.Now()
	}
	return nil
}

// rowChange emits the change of an Insert, Update, Delete or Truncate
// message (one change per truncated relation).
func (s *Source) rowChange(ctx context.Context, st *streamState, msg pglogrepl.Message, lsn contract.LSN) error {
	switch m := msg.(type) {
	case *pglogrepl.InsertMessage:
		rel, err := st.relation(m.RelationID)
		if err != nil {
			return err
		}
		nv, err := s.decodeTuple(rel, m.Tuple, false)
		if err != nil {
			return err
		}
		return s.emit(ctx, st, &contract.Change{Op: contract.OpInsert, New: nv}, rel, lsn)
	case *pglogrepl.UpdateMessage:
		rel, err := st.relation(m.RelationID)
		if err != nil {
			return err
		}
		nv, err := s.decodeTuple(rel, m.NewTuple, false)
		if err != nil {
			return err
		}
		ov, err := s.decodeTuple(rel, m.OldTuple, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey)
		if err != nil {
			return err
		}
		return s.emit(ctx, st, &contract.Change{Op: contract.OpUpdate, New: nv, Old: ov}, rel, lsn)
	case *pglogrepl.DeleteMessage:
		rel, err := st.relation(m.RelationID)
		if err != nil {
			return err
		}
		ov, err := s.decodeTuple(rel, m.OldTuple, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey)
		if err != nil {
			return err
		}
		return s.emit(ctx, st, &contract.Change{Op: contract.OpDelete, Old: ov}, rel, lsn)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			rel, err := st.relation(id)
			if err != nil {
				return err
			}
			if err := s.emit(ctx, st, &contract.Change{Op: contract.OpTruncate}, rel, lsn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *streamState) relation(id uint32) (*relation, error) {
	rel, ok := st.relations[id]
	if !ok {
		return nil, &ProtocolError{Err: fmt.Errorf("change for relation %d before its Relation message", id)}
	}
	return rel, nil
}

// emit hands one change of the open transaction to the sink, calling Begin
// first if this is the transaction's first delivered change.
func (s *Source) emit(ctx context.Context, st *streamState, c *contract.Change, rel *relation, lsn contract.LSN) error {
	if !st.inTx {
		return &ProtocolError{Err: fmt.Errorf("%s outside a transaction", c.Op)}
	}
	if !st.begun {
		if err := st.sink.Begin(ctx, st.tx); err != nil {
			return &SinkError{Op: "begin", Err: err}
		}
		st.begun = true
	}
	c.Database = s.database
	if rel != nil {
		c.Schema, c.Table, c.Key = rel.schema, rel.table, rel.key
		st.observe(rel, c)
	}
	c.Tx, c.LSN, c.Ordinal = st.tx, lsn, st.ordinal
	st.ordinal++
	if err := st.sink.Change(ctx, c); err != nil {
		return &SinkError{Op: "change", Err: err}
	}
	s.m.changes.WithLabelValues(c.Op.String()).Inc()
	return nil
}

// standaloneMessage delivers a non-transactional logical message as a
// transaction of its own: Tx{XID: 0, CommitLSN: the message's LSN - 1, zero
// CommitTime}, ordinal 0. The LSN pgoutput gives a message is the end of its
// WAL record, which is where the next record starts: when that is the
// commit record of the transaction the message was emitted in, its commit
// LSN is the same, and the two would share a position (the store would keep
// one of them). LSN - 1 lies inside the message's own record, so no commit
// starts there, and it orders the message after everything before it and
// before that commit. Its end position is the LSN: once acked, decoding
// resumes after the message's record (so it is not sent again) and never
// after a commit that starts there.
func (s *Source) standaloneMessage(ctx context.Context, st *streamState, c *contract.Change, lsn contract.LSN) error {
	tx := contract.Tx{CommitLSN: lsn - 1}
	if err := st.sink.Begin(ctx, tx); err != nil {
		return &SinkError{Op: "begin", Err: err}
	}
	c.Database, c.Tx, c.LSN, c.Ordinal = s.database, tx, lsn, 0
	if err := st.sink.Change(ctx, c); err != nil {
		return &SinkError{Op: "change", Err: err}
	}
	if err := st.sink.Commit(ctx, tx); err != nil {
		return &SinkError{Op: "commit", Err: err}
	}
	s.m.changes.WithLabelValues(c.Op.String()).Inc()
	s.m.transactions.Inc()
	st.pos.committed(lsn-1, lsn, true)
	st.lastData = time.Now()
	return nil
}

// resolveRelation resolves a Relation message's column types and key. It
// queries the catalog as of now (types by OID, the primary key); the column
// list itself is the message's, so schema changes apply from this point of
// the stream on.
func (s *Source) resolveRelation(ctx context.Context, st *streamState, m *pglogrepl.RelationMessage) (*relation, error) {
	rel := &relation{oid: m.RelationID, schema: m.Namespace, table: m.RelationName, cols: make([]relColumn, len(m.Columns))}
	var identity []string
	for i, c := range m.Columns {
		t, err := s.types.resolve(ctx, st.conn, c.DataType)
		if err != nil {
			return nil, fmt.Errorf("resolving column %s of %s.%s: %w", c.Name, m.Namespace, m.RelationName, err)
		}
		rel.cols[i] = relColumn{name: c.Name, typ: t, identity: c.Flags&1 != 0}
		if c.Flags&1 != 0 {
			identity = append(identity, c.Name)
		}
	}
	pk, err := primaryKey(ctx, st.conn, m.RelationID)
	if err != nil {
		return nil, fmt.Errorf("reading the primary key of %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	rel.key = pk
	if len(pk) == 0 && m.ReplicaIdentity != 'f' {
		rel.key = identity
	}
	return rel, nil
}

// columnsChanged logs at WARN, and counts, a Relation message that changes
// a table's columns within a session (ALTER TABLE while capture runs):
// columns added, dropped (a rename is both) or given another type. The
// pipeline dead-letters the changes of a rule reading a column that is gone
// (capture's schema gaps); a type change it cannot see, as a change carries
// values, not types: this line is what says that a rule now meets values of
// another type. Relation messages that do not change the columns (sent
// again after any ALTER or a reconnect) are not reported.
func (s *Source) columnsChanged(prev, rel *relation, lsn contract.LSN) {
	was := make(map[string]*pgvalue.Type, len(prev.cols))
	for _, c := range prev.cols {
		was[c.name] = c.typ
	}
	var added, retyped []string
	for _, c := range rel.cols {
		t, ok := was[c.name]
		switch {
		case !ok:
			added = append(added, c.name)
		case t.OID != c.typ.OID:
			retyped = append(retyped, fmt.Sprintf("%s %s → %s", c.name, t.Name, c.typ.Name))
		}
		delete(was, c.name)
	}
	dropped := slices.Sorted(maps.Keys(was))
	if len(added)+len(dropped)+len(retyped) == 0 {
		return
	}
	table := rel.schema + "." + rel.table
	s.m.schemaChanges.WithLabelValues(table).Inc()
	s.log.Warn("capture: the table's columns changed: rules reading a column that is gone dead-letter their changes; rules reading a retyped column now meet values of the new type (restart or reload to check them against it)",
		"table", table, "added", added, "dropped", dropped, "retyped", retyped, "lsn", lsn.String())
}
