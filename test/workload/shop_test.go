package workload_test

import (
	"context"
	"os"
	"testing"

	"github.com/chronicler-dev/chronicler/test/stack"
	"github.com/chronicler-dev/chronicler/test/workload"
)

// TestShopRunsOnTheExampleSchema runs 300 transactions of the shop workload
// on the example schema and checks the database agrees with what it did.
func TestShopRunsOnTheExampleSchema(t *testing.T) {
	pg := stack.StartPostgres(t)
	schema, err := os.ReadFile("../../deploy/examples/shop/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", string(schema))
	ctx := context.Background()
	shop, err := workload.NewShop(ctx, pg.URL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	for range 300 {
		if err := shop.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	conn := pg.Connect(t, "postgres")
	var customers, orders, lines, payments, badTotals int
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders),
		(SELECT count(*) FROM order_lines), (SELECT count(*) FROM payments),
		(SELECT count(*) FROM orders o WHERE total_cents <> (SELECT sum(quantity*price_cents) FROM order_lines l WHERE l.order_id = o.id))`).
		Scan(&customers, &orders, &lines, &payments, &badTotals)
	if err != nil {
		t.Fatal(err)
	}
	if shop.Transactions != 300 || customers == 0 || orders == 0 || lines < orders || payments == 0 || badTotals != 0 {
		t.Fatalf("after %d transactions: %d customers, %d orders, %d lines, %d payments, %d orders with a wrong total",
			shop.Transactions, customers, orders, lines, payments, badTotals)
	}
}
