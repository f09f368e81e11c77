// Package workload generates business traffic on Chronicler's example
// databases, for `chronicler dev`, the end-to-end tests and the benchmarks.
//
// [Shop] plays the legacy application of deploy/examples/shop/schema.sql:
// customers sign up and change their email, orders are placed with their
// lines in one transaction, paid and shipped. It uses one connection and is
// not safe for concurrent use.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shop drives the example shop schema.
type Shop struct {
	conn      *pgx.Conn
	rng       *rand.Rand
	customers []int64
	newOrders []int64 // placed, not paid
	paid      []int64 // paid, not shipped
	seq       int64
	run       string // in every email, so that runs on one database never collide
	// Transactions counts the committed transactions.
	Transactions int64
}

// NewShop connects to url, where the shop schema must exist, and seeds the
// random choices with seed (the same seed gives the same sequence of kinds
// of transactions on an empty database).
func NewShop(ctx context.Context, url string, seed uint64) (*Shop, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to the shop database: %w", err)
	}
	return &Shop{conn: conn, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), run: fmt.Sprintf("%x", seed&0xffffffff)}, nil
}

// Close closes the connection.
func (s *Shop) Close() { s.conn.Close(context.Background()) }

// Step runs one business transaction, chosen at random.
func (s *Shop) Step(ctx context.Context) error {
	var err error
	switch r := s.rng.IntN(100); {
	case len(s.customers) < 3 || r < 20:
		err = s.signUp(ctx)
	case r < 60:
		err = s.placeOrder(ctx)
	case r < 80 && len(s.newOrders) > 0:
		err = s.pay(ctx)
	case r < 90 && len(s.paid) > 0:
		err = s.ship(ctx)
	default:
		err = s.changeEmail(ctx)
	}
	if err == nil {
		s.Transactions++
	}
	return err
}

// Run steps at about rate transactions per second until ctx is done; it
// returns nil then.
func (s *Shop) Run(ctx context.Context, rate float64) error {
	if rate <= 0 {
		return errors.New("workload rate must be positive")
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := s.Step(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

func (s *Shop) tx(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.conn, f)
}

func (s *Shop) signUp(ctx context.Context) error {
	s.seq++
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO customers (email, full_name, phone) VALUES ($1, $2, $3) RETURNING id`,
			fmt.Sprintf("Customer.%s.%d@Example.com", s.run, s.seq), fmt.Sprintf("Customer %d", s.seq), fmt.Sprintf("+49 30 %07d", s.seq)).Scan(&id)
	})
	if err == nil {
		s.customers = append(s.customers, id)
	}
	return err
}

var skus = []string{"TEA-GREEN", "TEA-BLACK", "CUP-WHITE", "POT-CAST", "KETTLE-1L"}

func (s *Shop) placeOrder(ctx context.Context) error {
	cust := s.customers[s.rng.IntN(len(s.customers))]
	lines := 1 + s.rng.IntN(4)
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO orders (customer_id) VALUES ($1) RETURNING id`, cust).Scan(&id); err != nil {
			return err
		}
		var total int64
		for n := 1; n <= lines; n++ {
			qty, price := 1+s.rng.IntN(3), int64(250+s.rng.IntN(5000))
			if _, err := tx.Exec(ctx, `INSERT INTO order_lines (order_id, line_no, sku, quantity, price_cents) VALUES ($1, $2, $3, $4, $5)`,
				id, n, skus[s.rng.IntN(len(skus))], qty, price); err != nil {
				return err
			}
			total += int64(qty) * price
		}
		_, err := tx.Exec(ctx, `UPDATE orders SET total_cents = $2 WHERE id = $1`, id, total)
		return err
	})
	if err == nil {
		s.newOrders = append(s.newOrders, id)
	}
	return err
}

func (s *Shop) pay(ctx context.Context) error {
	i := s.rng.IntN(len(s.newOrders))
	id := s.newOrders[i]
	methods := []string{"card", "transfer", "voucher"}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO payments (order_id, amount_cents, method) SELECT id, total_cents, $2 FROM orders WHERE id = $1`,
			id, methods[s.rng.IntN(len(methods))]); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid' WHERE id = $1`, id)
		return err
	})
	if err == nil {
		s.newOrders = append(s.newOrders[:i], s.newOrders[i+1:]...)
		s.paid = append(s.paid, id)
	}
	return err
}

func (s *Shop) ship(ctx context.Context) error {
	i := s.rng.IntN(len(s.paid))
	id := s.paid[i]
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE orders SET status = 'shipped' WHERE id = $1`, id)
		return err
	})
	if err == nil {
		s.paid = append(s.paid[:i], s.paid[i+1:]...)
	}
	return err
}

func (s *Shop) changeEmail(ctx context.Context) error {
	s.seq++
	cust := s.customers[s.rng.IntN(len(s.customers))]
	return s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE customers SET email = $2 WHERE id = $1`, cust, fmt.Sprintf("Changed.%s.%d@Example.com", s.run, s.seq))
		return err
	})
}
