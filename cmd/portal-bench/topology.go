package main

// Who the bench connects, and who should receive what: read from the
// generated database with the portal's access rules, so the reference hub
// and the checker agree with the portal on every audience.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"

	"familieportal/portal/db"
)

// topology is the connected population: users, and for every conversation
// any of them may see, its case, its last seq and who of them may see it.
type topology struct {
	Users map[string]topoUser `json:"users"`
	Convs map[string]topoConv `json:"convs"`
	// Order is the connection order of the users (caseworker, then the
	// families of their cases, then the next caseworker).
	Order []string `json:"order"`
}

type topoUser struct {
	Name  string   `json:"name"`
	Role  string   `json:"role"` // citizen, caseworker, teamlead
	Convs []string `json:"convs"`
	Cases []string `json:"cases"` // cases the user may see (for the HTTP phase)
}

type topoConv struct {
	Case     string   `json:"case"`
	Title    string   `json:"title"`
	LastSeq  int64    `json:"last_seq"`
	Audience []string `json:"audience"` // connected users who may see it
}

// loadTopology picks n users from the database at path: caseworkers in a
// seeded random order, each with every party of every case they are
// assigned to, until n users are chosen.
func loadTopology(ctx context.Context, path string, n int, seed uint64) (*topology, error) {
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()

	var caseworkers []string
	if err := d.SelectContext(ctx, &caseworkers, `SELECT id FROM users WHERE kind = 'caseworker' ORDER BY id`); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 1))
	r.Shuffle(len(caseworkers), func(i, j int) { caseworkers[i], caseworkers[j] = caseworkers[j], caseworkers[i] })

	t := &topology{Users: map[string]topoUser{}, Convs: map[string]topoConv{}}
	add := func(id string) {
		if _, ok := t.Users[id]; !ok && len(t.Order) < n {
			t.Users[id] = topoUser{}
			t.Order = append(t.Order, id)
		}
	}
	for _, cw := range caseworkers {
		if len(t.Order) >= n {
			break
		}
		add(cw)
		var parties []string
		if err := d.SelectContext(ctx, &parties, `
			SELECT p.user_id FROM case_caseworkers a JOIN parties p ON p.case_id = a.case_id
			WHERE a.user_id = ? AND p.revoked_at IS NULL ORDER BY a.case_id, p.user_id`, cw); err != nil {
			return nil, err
		}
		for _, p := range parties {
			add(p)
		}
	}
	if len(t.Order) < n {
		return nil, fmt.Errorf("the dataset has only %d users in caseworkers' cases; want %d (raise --scale)", len(t.Order), n)
	}

	// What each chosen user may see, by the portal's rules: a citizen the
	// conversations they are a member of while an active party; staff
	// every conversation of the cases they are assigned to.
	for _, id := range t.Order {
		var u struct {
			Name string `db:"name"`
			Kind string `db:"kind"`
		}
		if err := d.GetContext(ctx, &u, `SELECT name, kind FROM users WHERE id = ?`, id); err != nil {
			return nil, err
		}
		var rows []struct {
			ID      string `db:"id"`
			Case    string `db:"case_id"`
			Child   string `db:"child_name"`
			LastSeq int64  `db:"last_seq"`
		}
		q := `SELECT c.id, c.case_id, k.child_name, c.last_seq
			FROM conversation_members m
			JOIN conversations c ON c.id = m.conversation_id
			JOIN cases k ON k.id = c.case_id
			JOIN parties p ON p.case_id = c.case_id AND p.user_id = m.user_id AND p.revoked_at IS NULL
			WHERE m.user_id = ? ORDER BY c.id`
		caseQ := `SELECT case_id FROM parties WHERE user_id = ? AND revoked_at IS NULL ORDER BY case_id`
		if u.Kind != "citizen" {
			q = `SELECT c.id, c.case_id, k.child_name, c.last_seq
				FROM case_caseworkers a
				JOIN conversations c ON c.case_id = a.case_id
				JOIN cases k ON k.id = c.case_id
				WHERE a.user_id = ? ORDER BY c.id`
			caseQ = `SELECT case_id FROM case_caseworkers WHERE user_id = ? ORDER BY case_id`
		}
		if err := d.SelectContext(ctx, &rows, q, id); err != nil {
			return nil, err
		}
		tu := topoUser{Name: u.Name, Role: u.Kind}
		if err := d.SelectContext(ctx, &tu.Cases, caseQ, id); err != nil {
			return nil, err
		}
		for _, row := range rows {
			tu.Convs = append(tu.Convs, row.ID)
			c := t.Convs[row.ID]
			c.Case, c.Title, c.LastSeq = row.Case, row.Child, row.LastSeq
			c.Audience = append(c.Audience, id)
			t.Convs[row.ID] = c
		}
		t.Users[id] = tu
	}
	for id, c := range t.Convs {
		slices.Sort(c.Audience)
		t.Convs[id] = c
	}
	return t, nil
}

func (t *topology) write(path string) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readTopology(path string) (*topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t topology
	return &t, json.Unmarshal(b, &t)
}
