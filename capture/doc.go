// Package capture reads a Postgres database's logical replication stream
// (pgoutput) and turns it into decoded [change.Change] values in commit order.
//
// Status: the package is being built (see the capture issue). Today it holds
// only the change contract in capture/change.
package capture
