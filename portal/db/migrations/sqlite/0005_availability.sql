-- Availability: when each caseworker can be reached on each contact channel,
-- and the office's own hours (office hours, the barnevernvakt, half days,
-- closure days). Times of day are Europe/Oslo wall-clock minutes after local
-- midnight (start inclusive, end exclusive, never across midnight); dates are
-- Oslo calendar dates written YYYY-MM-DD, so they compare as text. Norwegian
-- public holidays are not stored: they are computed (messaging/holidays.go).

-- A caseworker's weekly windows per channel; several per day are allowed.
-- That they do not overlap is checked before they are written (the whole set
-- is replaced in one transaction).
CREATE TABLE availability_windows (
	id        INTEGER PRIMARY KEY,
	user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	channel   TEXT NOT NULL CHECK (channel IN ('chat', 'phone', 'video', 'meeting')),
	weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6), -- 0 is Sunday (time.Weekday)
	start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
	end_min   INTEGER NOT NULL CHECK (end_min BETWEEN 1 AND 1440),
	CHECK (end_min > start_min)
);
CREATE INDEX availability_windows_user_idx ON availability_windows (user_id);

-- Date exceptions: one date opened or closed, for one channel or ('') all.
CREATE TABLE availability_exceptions (
	id        INTEGER PRIMARY KEY,
	user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	day       TEXT NOT NULL CHECK (length(day) = 10),
	channel   TEXT NOT NULL DEFAULT '' CHECK (channel IN ('', 'chat', 'phone', 'video', 'meeting')),
	is_open   BOOLEAN NOT NULL,
	start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
	end_min   INTEGER NOT NULL CHECK (end_min BETWEEN 1 AND 1440),
	CHECK (end_min > start_min)
);
CREATE INDEX availability_exceptions_user_idx ON availability_exceptions (user_id, day);

-- Absences, both days inclusive. substitute_id answers meanwhile; NULL means
-- the team does. While an absence lasts, the substitute sees the absent
-- caseworker's conversations (portal/chat_access.go), hence the index.
CREATE TABLE availability_absences (
	id            INTEGER PRIMARY KEY,
	user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	from_day      TEXT NOT NULL CHECK (length(from_day) = 10),
	to_day        TEXT NOT NULL CHECK (length(to_day) = 10),
	substitute_id TEXT REFERENCES users (id) ON DELETE SET NULL,
	CHECK (to_day >= from_day),
	CHECK (substitute_id IS NULL OR substitute_id <> user_id)
);
CREATE INDEX availability_absences_user_idx ON availability_absences (user_id, to_day);
CREATE INDEX availability_absences_substitute_idx ON availability_absences (substitute_id, to_day);

-- The office's weekly opening hours: every channel of a caseworker without
-- windows of their own follows them, and answer times end with them.
CREATE TABLE office_hours (
	id        INTEGER PRIMARY KEY,
	office_id TEXT NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
	weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
	start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
	end_min   INTEGER NOT NULL CHECK (end_min BETWEEN 1 AND 1440),
	CHECK (end_min > start_min)
);
CREATE INDEX office_hours_office_idx ON office_hours (office_id);

-- The office's day rules and the barnevernvakt's hours. No row means the
-- defaults below. A NULL eve closing time leaves 24 or 31 December an
-- ordinary working day; 0 closes it all day.
CREATE TABLE office_calendar (
	office_id               TEXT PRIMARY KEY REFERENCES offices (id) ON DELETE CASCADE,
	christmas_eve_close_min INTEGER CHECK (christmas_eve_close_min BETWEEN 0 AND 1439),
	new_years_eve_close_min INTEGER CHECK (new_years_eve_close_min BETWEEN 0 AND 1439),
	-- The barnevernvakt answers on weekdays from evening_min until
	-- morning_min the next morning, and around the clock otherwise.
	vakt_evening_min        INTEGER NOT NULL DEFAULT 930 CHECK (vakt_evening_min BETWEEN 0 AND 1440),
	vakt_morning_min        INTEGER NOT NULL DEFAULT 480 CHECK (vakt_morning_min BETWEEN 0 AND 1440),
	-- The answer time promised to families, in working days.
	answer_days             INTEGER NOT NULL DEFAULT 2 CHECK (answer_days BETWEEN 1 AND 30)
);

-- Local days the office is closed (a staff seminar, a municipal day off).
CREATE TABLE office_closure_days (
	office_id TEXT NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
	day       TEXT NOT NULL CHECK (length(day) = 10),
	PRIMARY KEY (office_id, day)
);
