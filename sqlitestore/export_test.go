package sqlitestore

// WALLimit is walLimit, for the external tests.
const WALLimit = walLimit
