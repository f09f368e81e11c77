package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/capture/pgvalue"
)

// querier is what *pgx.Conn and pgx.Tx share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// primaryKey returns the primary-key column names of a relation in table
// order, or nil when it has none.
func primaryKey(ctx context.Context, conn *pgx.Conn, relid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1 AND i.indisprimary ORDER BY a.attnum`, relid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// typeCache resolves column type OIDs to decoders' Types, from pgx's
// built-ins or pg_type. It is used from the capture goroutine only.
type typeCache struct {
	m map[uint32]*pgvalue.Type
}

func newTypeCache() *typeCache { return &typeCache{m: map[uint32]*pgvalue.Type{}} }

// forget drops a type (a pgoutput Type message announced it may have changed).
func (c *typeCache) forget(oid uint32) { delete(c.m, oid) }

func (c *typeCache) resolve(ctx context.Context, conn *pgx.Conn, oid uint32) (*pgvalue.Type, error) {
	return c.resolveDepth(ctx, conn, oid, 0)
}

func (c *typeCache) resolveDepth(ctx context.Context, conn *pgx.Conn, oid uint32, depth int) (*pgvalue.Type, error) {
	if t, ok := pgvalue.Builtin(oid); ok {
		return t, nil
	}
	if t, ok := c.m[oid]; ok {
		return t, nil
	}
	if depth > 8 {
		return &pgvalue.Type{OID: oid, Name: fmt.Sprintf("oid %d", oid)}, nil
	}
	var (
		name, typtype, category string
		base, elem              uint32
		elemDelim               *string
	)
	err := conn.QueryRow(ctx, `
SELECT t.typname, t.typtype::text, t.typcategory::text, t.typbasetype, t.typelem,
       (SELECT e.typdelim::text FROM pg_type e WHERE e.oid = t.typelem)
FROM pg_type t WHERE t.oid = $1`, oid).Scan(&name, &typtype, &category, &base, &elem, &elemDelim)
	if err == pgx.ErrNoRows {
		t := &pgvalue.Type{OID: oid, Name: fmt.Sprintf("oid %d", oid)}
		c.m[oid] = t
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up type %d in pg_type: %w", oid, err)
	}
	t := &pgvalue.Type{OID: oid, Name: name}
	switch {
	case typtype == "e":
		t.Kind = pgvalue.KindString
	case typtype == "d":
		bt, err := c.resolveDepth(ctx, conn, base, depth+1)
		if err != nil {
			return nil, err
		}
		cp := *bt
		cp.OID, cp.Name = oid, name
		t = &cp
	case category == "A" && elem != 0:
		et, err := c.resolveDepth(ctx, conn, elem, depth+1)
		if err != nil {
			return nil, err
		}
		t.Kind, t.Elem, t.Delim = pgvalue.KindArray, et, ','
		if elemDelim != nil && len(*elemDelim) == 1 {
			t.Delim = (*elemDelim)[0]
		}
	default:
		t.Kind = pgvalue.KindUnknown // composite, range, extension types
	}
	c.m[oid] = t
	return t, nil
}
