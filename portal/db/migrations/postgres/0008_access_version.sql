-- access_version counts changes to what the access rules read: the chat
-- keeps access decisions and audiences in memory, and reuses one only while
-- this number is what it was when the decision was made (portal/access_memo.go).
-- Every table that canUseConversation or the audience query reads bumps it,
-- in the same transaction as the change, so a revoked party or a removed
-- caseworker is refused at the very next frame, on every instance.
-- Adding a table to those rules means adding it here.
--
-- PostgreSQL version of sqlite/0008_access_version.sql: row-level triggers
-- through one function, as in SQLite (a statement that changes no row, such
-- as an INSERT ... ON CONFLICT DO NOTHING that finds its row, bumps nothing
-- and takes no lock on access_version).
CREATE TABLE access_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	v  BIGINT NOT NULL
);
INSERT INTO access_version (id, v) VALUES (1, 0);
CREATE FUNCTION bump_access_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE access_version SET v = v + 1 WHERE id = 1;
	RETURN NULL;
END
$$;
CREATE TRIGGER access_version_conversations AFTER INSERT OR DELETE OR UPDATE OF case_id ON conversations
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_cases AFTER INSERT OR DELETE OR UPDATE OF id, team_id ON cases
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_conversation_members AFTER INSERT OR DELETE OR UPDATE OF conversation_id, user_id ON conversation_members
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_parties AFTER INSERT OR DELETE OR UPDATE ON parties
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_case_caseworkers AFTER INSERT OR DELETE OR UPDATE ON case_caseworkers
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_users AFTER INSERT OR DELETE OR UPDATE OF id, kind, team_id ON users
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER access_version_availability_absences AFTER INSERT OR DELETE OR UPDATE ON availability_absences
	FOR EACH ROW EXECUTE FUNCTION bump_access_version();
