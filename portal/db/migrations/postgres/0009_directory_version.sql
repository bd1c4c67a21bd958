-- directory_version counts changes to what the portal keeps in memory
-- besides access decisions (portal/directory.go): offices with their hours,
-- calendars and closure days (the footer on every page), who works on a
-- case and when they can be reached (the case page's contact card), and
-- what cases and people are called (conversation titles). Every table the
-- kept answers are made from bumps it in the same transaction as the
-- change, so a page never shows what a committed change has replaced, on
-- any instance. Adding a table to those answers means adding it here.
--
-- PostgreSQL version of sqlite/0009_directory_version.sql: row-level
-- triggers through one function, as 0008_access_version.sql does.

CREATE TABLE directory_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	v  BIGINT NOT NULL
);
INSERT INTO directory_version (id, v) VALUES (1, 0);
CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE directory_version SET v = v + 1 WHERE id = 1;
	RETURN NULL;
END
$$;
CREATE TRIGGER directory_version_offices AFTER INSERT OR DELETE OR UPDATE ON offices
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_office_hours AFTER INSERT OR DELETE OR UPDATE ON office_hours
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_office_calendar AFTER INSERT OR DELETE OR UPDATE ON office_calendar
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_office_closure_days AFTER INSERT OR DELETE OR UPDATE ON office_closure_days
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_availability_windows AFTER INSERT OR DELETE OR UPDATE ON availability_windows
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_availability_exceptions AFTER INSERT OR DELETE OR UPDATE ON availability_exceptions
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_availability_absences AFTER INSERT OR DELETE OR UPDATE ON availability_absences
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_case_caseworkers AFTER INSERT OR DELETE OR UPDATE ON case_caseworkers
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_cases AFTER INSERT OR DELETE OR UPDATE OF id, office_id, child_name ON cases
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
CREATE TRIGGER directory_version_users AFTER INSERT OR DELETE OR UPDATE OF id, name, office_id ON users
	FOR EACH ROW EXECUTE FUNCTION bump_directory_version();
