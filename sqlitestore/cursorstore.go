package sqlitestore

import "github.com/choiros/eventbus"

// Store keeps the cursors of eventbus.Durable consumers in its file.
var _ eventbus.CursorStore = (*Store)(nil)
