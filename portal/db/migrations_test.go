package db

import (
	"io/fs"
	"path"
	"slices"
	"testing"
)

// TestMigrations_everySQLiteMigrationHasAPostgresTwin: the dialects'
// migrations pair up by name, so a schema change made for one is not
// forgotten for the other (postgres_test.go checks that the schemas match).
func TestMigrations_everySQLiteMigrationHasAPostgresTwin(t *testing.T) {
	names := func(dialect string) []string {
		t.Helper()
		files, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = path.Base(f)
		}
		return files
	}
	lite, pg := names(SQLite), names(Postgres)
	if len(lite) == 0 || !slices.Equal(lite, pg) {
		t.Errorf("migrations differ:\n sqlite   %v\n postgres %v", lite, pg)
	}
}
