package mapping

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

func TestCaseConversion(t *testing.T) {
	for _, c := range []struct{ in, snake, camel, pascal, kebab string }{
		{"order_lines", "order_lines", "orderLines", "OrderLines", "order-lines"},
		{"OrderLines", "order_lines", "orderLines", "OrderLines", "order-lines"},
		{"HTTPServer2Go", "http_server2_go", "httpServer2Go", "HttpServer2Go", "http-server2-go"},
		{"customer-email changed", "customer_email_changed", "customerEmailChanged", "CustomerEmailChanged", "customer-email-changed"},
		{"", "", "", "", ""},
		{"été_bien", "été_bien", "étéBien", "ÉtéBien", "été-bien"},
	} {
		if g := toSnake(c.in); g != c.snake {
			t.Errorf("snake(%q) = %q, want %q", c.in, g, c.snake)
		}
		if g := toCamel(c.in); g != c.camel {
			t.Errorf("camel(%q) = %q, want %q", c.in, g, c.camel)
		}
		if g := toPascal(c.in); g != c.pascal {
			t.Errorf("pascal(%q) = %q, want %q", c.in, g, c.pascal)
		}
		if g := toKebab(c.in); g != c.kebab {
			t.Errorf("kebab(%q) = %q, want %q", c.in, g, c.kebab)
		}
	}
}

func TestIDHelpers(t *testing.T) {
	got, err := fnID("public.t", int64(7), json.Number("1.50"), true, time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if err != nil || got != "public.t:7:1.50:true:2024-01-02T02:04:05Z" {
		t.Errorf("id = %v, %v", got, err)
	}
	if _, err := fnID(int64(1), nil); !errors.Is(err, ErrResultType) {
		t.Errorf("id with nil: %v", err)
	}
	if _, err := fnID(contract.Unchanged); !errors.Is(err, ErrUnchangedValue) {
		t.Errorf("id with unchanged: %v", err)
	}
	u1, _ := fnUUID5("order", int64(1))
	u2, _ := fnUUID5("order", int64(1))
	u3, _ := fnUUID5("order", int64(2))
	if u1 != u2 || u1 == u3 || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u1.(string)) {
		t.Errorf("uuid5: %v %v %v", u1, u2, u3)
	}
	if v, _ := fnCoalesce(nil, contract.Unchanged, "", "x"); v != "" {
		t.Errorf("coalesce = %v, want the empty string (it is not null)", v)
	}
}
