// Package opsserver is Chronicler's operations HTTP listener (http.addr):
//
//   - /metrics: the Prometheus registry given (text exposition format).
//   - /healthz: liveness. 200 "ok" while Config.Health returns nil; 503 with
//     the error otherwise (the pipeline failed and the process is stopping).
//   - /readyz: readiness. Config.Ready decides: 200 with its body ("active"
//     or "standby") when ready, 503 with the reason otherwise.
//   - /debug/pprof/: Go's profiler, only with Config.PProf.
//
// Anything else is 404. The server has read-header and idle timeouts and
// answers HEAD as well as GET.
//
// With Config.CertFile and KeyFile (http.tls.cert_file, key_file) it serves
// HTTPS only (TLS 1.2 or later); the certificate is loaded at New (a file
// that does not load is an error naming the setting) and again at the next
// handshake after either file's modification time or size changes, so a
// renewed certificate needs no restart (one that does not load keeps the
// last good one). pprof is off unless Config.PProf (http.pprof) is set. To
// keep the listener on the host, bind it to 127.0.0.1 (http.addr
// "127.0.0.1:8080").
//
// # Concurrency
//
// New listens at once (so a busy port is reported before anything starts);
// Run serves until its context ends, then shuts down (waiting up to a
// second for requests under way) and returns. Health and Ready are called
// from the server's goroutines, concurrently: they must be safe for that.
//
// # Example
//
//	srv, err := opsserver.New(opsserver.Config{Addr: ":8080", Gatherer: reg,
//		Health: func() error { return nil },
//		Ready:  func() (bool, string) { return true, "active" }})
//	if err != nil {
//		return err // the address is taken or invalid
//	}
//	go srv.Run(ctx)
package opsserver
