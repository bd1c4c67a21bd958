package portal

import (
	"os"
	"testing"

	"familieportal/portal/db/dbtest"
)

// TestMain runs every test of the package on SQLite, then again on
// PostgreSQL when PORTAL_TEST_POSTGRES names a server (make test starts
// one): newEnv opens the database of the run in progress.
func TestMain(m *testing.M) {
	os.Exit(dbtest.EachDialect(m).Run())
}
