package main

import (
	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// openSQLite opens the SQLite store at path with its defaults; the run
// closes it after the bus has shut down.
func openSQLite(path string) (eventbus.Store, error) {
	return sqlitestore.Open(path)
}
