package opsserver

import "fmt"

// ListenError reports an address that cannot be listened on.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("http.addr %s: %v (choose a free port, or \"\" to disable the listener)", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }
