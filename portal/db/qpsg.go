package db

// SQLite re-plans a statement whenever it suspects that the value bound to
// a parameter could change the best plan: for every `column = ?` that some
// candidate plan of a join, or of a query with ORDER BY, does not use
// through an index (where.c, whereLoopOutputAdjust: "is the value 0 or 1?").
// The statement is only marked; the re-plan happens when a binding changes,
// and sqlite3_clear_bindings counts as a change. go-sqlite3 clears the
// bindings each time it puts a statement back in its cache or binds new
// arguments, so nearly every query the portal runs was parsed and planned
// again on every execution, statement cache or not: a fifth of the CPU of
// a case page (portal-bench, perf: sqlite3_step → sqlite3Reprepare).
//
// The query planner stability guarantee (SQLITE_DBCONFIG_ENABLE_QPSG)
// turns that off: plans no longer depend on bound values, which the
// portal never wants anyway (it has no LIKE ? and no ANALYZE statistics).
// go-sqlite3 has no API for sqlite3_db_config, so it is set by an
// automatic extension, which SQLite runs for every connection it opens
// from then on. The symbols are those of the SQLite that go-sqlite3
// compiles into the binary (or links, with its libsqlite3 tag).

/*
typedef struct sqlite3 sqlite3;
extern int sqlite3_db_config(sqlite3 *db, int op, ...);
extern int sqlite3_auto_extension(void (*entry)(void));
extern int sqlite3_open(const char *filename, sqlite3 **db);
extern int sqlite3_close(sqlite3 *db);

enum { portalDBConfigEnableQPSG = 1007 }; // SQLITE_DBCONFIG_ENABLE_QPSG, sqlite3.h

static int portal_enable_qpsg(sqlite3 *db, char **errmsg, const void *api) {
	return sqlite3_db_config(db, portalDBConfigEnableQPSG, 1, (int *)0);
}

static int portal_register_qpsg(void) {
	return sqlite3_auto_extension((void (*)(void))portal_enable_qpsg);
}

// portal_qpsg_of_new_connection opens a private in-memory connection and
// reports whether it has the guarantee on (-1 if it cannot be opened).
static int portal_qpsg_of_new_connection(void) {
	sqlite3 *db = 0;
	int on = -1;
	if (sqlite3_open(":memory:", &db) == 0) {
		sqlite3_db_config(db, portalDBConfigEnableQPSG, -1, &on);
	}
	sqlite3_close(db);
	return on;
}
*/
import "C"

import (
	"fmt"
	"sync"
)

var qpsgOnce = sync.OnceValue(func() error {
	if rc := C.portal_register_qpsg(); rc != 0 {
		return fmt.Errorf("db: register the query planner stability guarantee: sqlite error %d", int(rc))
	}
	return nil
})

// enableQPSG makes every SQLite connection the process opens from now on
// keep its statements' plans when their bindings change (see above). It is
// safe to call more than once.
func enableQPSG() error { return qpsgOnce() }

// qpsgOfNewConnection reports whether a newly opened SQLite connection has
// the query planner stability guarantee on, for the test.
func qpsgOfNewConnection() bool { return C.portal_qpsg_of_new_connection() == 1 }
