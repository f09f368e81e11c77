package mapping

import (
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestNewIsNilOnDelete: in capture rules new is nil on a delete and old is
// nil where the server sent no old row (an insert), not empty maps: so
// coalesce(new, old) is the row there is and `data: new` is null on a
// delete; a column read of an absent row (old.email on an insert, new.id on
// a delete, nested ones too) stays nil, as with ?.
func TestNewIsNilOnDelete(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - name: row
    table: public.t
    on: [insert, delete]
    stream: {category: t, id: 'coalesce(new.id, old.id)'}
    type: Row
    data: {row: 'coalesce(new, old)', isDelete: new == nil, hasOld: old != nil, whole: new, oldEmail: old.email, deep: old.meta.tag, safe: new?.id}
`)
	del := insert("t", nil)
	del.Op, del.Old = contract.OpDelete, map[string]any{"id": int64(1), "email": "a@x"}
	for _, tc := range []struct {
		ch   *contract.Change
		want string
	}{
		{del, `{"row":{"email":"a@x","id":1},"isDelete":true,"hasOld":true,"whole":null,"oldEmail":"a@x","deep":null,"safe":null}`},
		{insert("t", map[string]any{"id": int64(2), "email": "b@x"}), `{"row":{"email":"b@x","id":2},"isDelete":false,"hasOld":false,"whole":{"email":"b@x","id":2},"oldEmail":null,"deep":null,"safe":2}`},
	} {
		out, err := rs.Capture(tc.ch, nil)
		if err != nil || len(out) != 1 {
			t.Fatalf("%s: %v, %v", tc.ch.Op, out, err)
		}
		if got := string(out[0].Data); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.ch.Op, got, tc.want)
		}
	}
}
