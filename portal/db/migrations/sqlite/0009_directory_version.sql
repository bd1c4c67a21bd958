-- directory_version counts changes to what the portal keeps in memory
-- besides access decisions (portal/directory.go): offices with their hours,
-- calendars and closure days (the footer on every page), who works on a
-- case and when they can be reached (the case page's contact card), and
-- what cases and people are called (conversation titles). Every table the
-- kept answers are made from bumps it in the same transaction as the
-- change, so a page never shows what a committed change has replaced, on
-- any instance. Adding a table to those answers means adding it here.

CREATE TABLE directory_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	v  INTEGER NOT NULL
);
INSERT INTO directory_version (id, v) VALUES (1, 0);
CREATE TRIGGER directory_version_offices_insert AFTER INSERT ON offices
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_offices_delete AFTER DELETE ON offices
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_offices_update AFTER UPDATE ON offices
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_hours_insert AFTER INSERT ON office_hours
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_hours_delete AFTER DELETE ON office_hours
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_hours_update AFTER UPDATE ON office_hours
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_calendar_insert AFTER INSERT ON office_calendar
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_calendar_delete AFTER DELETE ON office_calendar
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_calendar_update AFTER UPDATE ON office_calendar
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_closure_days_insert AFTER INSERT ON office_closure_days
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_closure_days_delete AFTER DELETE ON office_closure_days
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_office_closure_days_update AFTER UPDATE ON office_closure_days
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_windows_insert AFTER INSERT ON availability_windows
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_windows_delete AFTER DELETE ON availability_windows
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_windows_update AFTER UPDATE ON availability_windows
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_exceptions_insert AFTER INSERT ON availability_exceptions
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_exceptions_delete AFTER DELETE ON availability_exceptions
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_exceptions_update AFTER UPDATE ON availability_exceptions
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_absences_insert AFTER INSERT ON availability_absences
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_absences_delete AFTER DELETE ON availability_absences
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_availability_absences_update AFTER UPDATE ON availability_absences
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_case_caseworkers_insert AFTER INSERT ON case_caseworkers
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_case_caseworkers_delete AFTER DELETE ON case_caseworkers
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_case_caseworkers_update AFTER UPDATE ON case_caseworkers
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_cases_insert AFTER INSERT ON cases
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_cases_delete AFTER DELETE ON cases
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_cases_update AFTER UPDATE OF id, office_id, child_name ON cases
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_users_insert AFTER INSERT ON users
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_users_delete AFTER DELETE ON users
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER directory_version_users_update AFTER UPDATE OF id, name, office_id ON users
BEGIN UPDATE directory_version SET v = v + 1 WHERE id = 1; END;
