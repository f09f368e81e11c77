package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// snapTable is a table as the snapshot reads it.
type snapTable struct {
	name string // "schema.table"
	oid  uint32
	cols []Column
	// genStored: the publication sends STORED generated columns, so they
	// are in cols (Source.genStored when the table was described).
	genStored bool
	// keyNames are the key columns (Change.Key): the primary key, else the
	// replica identity index; nil for a table with neither (read in ctid
	// order).
	keyNames []string
	// matchNames are the columns whose values name a row in the stream:
	// the key columns, or every column for a table read in ctid order
	// (REPLICA IDENTITY FULL sends every old value).
	matchNames []string
	order      []string // the SQL key expressions: quoted key columns, or the row's position
	selects    string   // the columns (and the position) as SELECT lists them
	keyIdx     []int    // where the order key is in a row
	// ctid: the table has no key; its rows are read in the order of, and
	// named by, their position: ctid, or (tableoid, ctid) for a partitioned
	// table, whose partitions each number their ctids from the start.
	ctid bool
}

// positionCasts are the casts of the position expressions' bounds.
var positionCasts = map[string]string{"tableoid": "::oid", "ctid": "::tid"}

// snapTable reads what the snapshot needs of table.
func (s *Source) snapTable(ctx context.Context, conn *pgx.Conn, table string) (*snapTable, error) {
	genStored := s.genStored.Load()
	t, err := readTable(ctx, conn, table, genStored)
	if err != nil {
		return nil, err
	}
	if !t.Exists {
		return nil, &TableNotFoundError{Table: table}
	}
	st := &snapTable{name: table, cols: t.Columns, genStored: genStored}
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1)::oid", t.quoted()).Scan(&st.oid); err != nil {
		return nil, fmt.Errorf("reading the oid of %s: %w", table, err)
	}
	key := map[string]bool{}
	for _, k := range t.Key() {
		key[k] = true
	}
	if len(key) == 0 && t.ReplicaIdentity == "index" {
		rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1 AND i.indisreplident`, st.oid)
		if err != nil {
			return nil, fmt.Errorf("reading the replica identity index of %s: %w", table, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("reading the replica identity index of %s: %w", table, err)
		}
		for _, n := range names {
			key[n] = true
		}
	}
	var selects []string
	for i, c := range t.Columns {
		q := pgx.Identifier{c.Name}.Sanitize()
		selects = append(selects, q)
		if key[c.Name] {
			st.keyNames = append(st.keyNames, c.Name)
			st.order = append(st.order, q)
			st.keyIdx = append(st.keyIdx, i)
		}
	}
	st.matchNames = st.keyNames
	if len(st.keyNames) == 0 {
		st.ctid = true
		st.order = []string{"ctid"}
		if t.Partitioned {
			st.order = []string{"tableoid", "ctid"}
		}
		for i, o := range st.order {
			st.keyIdx = append(st.keyIdx, len(t.Columns)+i)
			selects = append(selects, o)
		}
		for _, c := range t.Columns {
			st.matchNames = append(st.matchNames, c.Name)
		}
	}
	st.selects = strings.Join(selects, ", ")
	return st, nil
}

// chunkQuery is the read of the rows with key in (lo, hi] (lo nil: from the
// start; hi nil: up to limit rows) for which where holds, in key order.
func (t *snapTable) chunkQuery(where string, lo, hi []string, limit int) (string, [][]byte) {
	schema, name := SplitTable(t.name)
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s", t.selects, pgx.Identifier{schema, name}.Sanitize())
	var conds []string
	var args [][]byte
	bound := func(key []string, op string) {
		ph := make([]string, len(key))
		for i, k := range key {
			args = append(args, []byte(k))
			ph[i] = "$" + strconv.Itoa(len(args))
			if t.ctid {
				ph[i] += positionCasts[t.order[i]]
			}
		}
		conds = append(conds, fmt.Sprintf("(%s) %s (%s)", strings.Join(t.order, ", "), op, strings.Join(ph, ", ")))
	}
	if lo != nil {
		bound(lo, ">")
	}
	if hi != nil {
		bound(hi, "<=")
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s", strings.Join(t.order, ", "))
	if hi == nil {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	return b.String(), args
}

var planRowsRE = regexp.MustCompile(`rows=(\d+)`)

// countBytesMax bounds the tables estimateRows counts: a table never
// vacuumed or analyzed (reltuples -1, as a partitioned table's own entry
// stays) of at most this size on disk, its partitions' included. A count
// reads the whole table in one statement, whose MVCC snapshot holds back
// vacuum for as long: a larger table has the planner's estimate (from its
// size) instead.
const countBytesMax = 8 << 20

// estimateRows estimates the rows of tables: pg_class.reltuples, a count
// for a small table never analyzed, else the planner's estimate (always
// with where).
func (s *Source) estimateRows(ctx context.Context, conn *pgx.Conn, tables []string, where string) (uint64, error) {
	var total uint64
	for _, t := range tables {
		schema, name := SplitTable(t)
		ident := pgx.Identifier{schema, name}.Sanitize()
		if where != "" {
			n, err := planRows(ctx, conn, "EXPLAIN SELECT 1 FROM "+ident+" WHERE ("+where+")")
			if err != nil {
				return 0, fmt.Errorf("estimating the rows of %s where %s: %w", t, where, err)
			}
			total += n
			continue
		}
		var est float64
		var size int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(c.reltuples, 0), coalesce(CASE WHEN c.relkind = 'p'
	THEN (SELECT sum(pg_relation_size(p.relid)) FROM pg_partition_tree(c.oid) p) ELSE pg_relation_size(c.oid) END, 0)::int8
FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`, ident).Scan(&est, &size); err != nil {
			return 0, fmt.Errorf("estimating the rows of %s: %w", t, err)
		}
		switch {
		case est >= 0:
			total += uint64(est)
		case size <= countBytesMax:
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&n); err != nil {
				return 0, fmt.Errorf("counting the rows of %s: %w", t, err)
			}
			total += uint64(n)
		default:
			n, err := planRows(ctx, conn, "EXPLAIN SELECT 1 FROM "+ident)
			if err != nil {
				return 0, fmt.Errorf("estimating the rows of %s: %w", t, err)
			}
			total += n
		}
	}
	return total, nil
}

// planRows is the row count of the top node of the plan of explain (an
// EXPLAIN statement), 0 when it names none.
func planRows(ctx context.Context, conn *pgx.Conn, explain string) (uint64, error) {
	var plan string
	if err := conn.QueryRow(ctx, explain).Scan(&plan); err != nil {
		return 0, err
	}
	if m := planRowsRE.FindStringSubmatch(plan); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n, nil
	}
	return 0, nil
}
