package portal

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"familieportal/messaging"
)

// Every page asks the database the same few questions whose answers almost
// never change: the office in the footer and its barnevernvakt's hours,
// who answers a case's family and when (the contact card), when a member
// of staff's own chat is open (the inbox banner), and which conversations
// a person may use, with their titles. These answers are kept in memory
// like the chat's access answers (access_memo.go), tagged with two numbers
// the database keeps: access_version (migration 0008) for everything the
// access rules read, and directory_version (migration 0009) for the rest
// they are made from (offices and their hours, staff's availability
// settings, who works on a case, what cases and people are called). Each
// table an answer is made from bumps one of them in the same transaction
// as the change. A kept answer is used only while both numbers, read fresh
// for every page, are the ones it was made under, and only on the Oslo
// date it was made on (a substitute's access and an absence follow the
// calendar). So this is not a cache with a lifetime: it never shows what a
// committed change has replaced, on any instance, and the conversation
// lists (access data) are exactly what the access rule answers now.
//
// The versions are read before an answer is computed, so an answer is at
// least as new as its tag. Kept values are shared between requests and
// must not be modified.

// directoryMemoMax bounds each map; past it, the memo starts afresh.
const directoryMemoMax = 100_000

// memoTag is what a kept answer is valid for.
type memoTag struct {
	access, directory int64
	day               string // Oslo date
}

// newer reports whether t is at least as new as u in both versions.
func (t memoTag) newer(u memoTag) bool {
	return t.access >= u.access && t.directory >= u.directory
}

// directoryMemo is the portal's kept answers. The zero value is empty and
// ready.
type directoryMemo struct {
	mu            sync.Mutex
	tag           memoTag                                 // what the maps are kept under, once they exist (ready)
	defaultOffice map[struct{}]Office                     // the one DefaultOffice; Office{} if there is none
	offices       map[string]messaging.OfficeSettings     // by office id
	contacts      map[string]messaging.Contact            // by case id
	schedules     map[string]messaging.Schedule           // a member of staff's own, by user id
	conversations map[userKey][]messaging.ConversationRef // what Conversations returned
}

type userKey struct{ id, kind string }

// ready reports whether the memo holds answers under its tag: the maps
// are made together, the first time an answer is kept.
func (m *directoryMemo) ready() bool { return m.offices != nil }

// at makes tag the memo's, dropping what was kept under another. It
// reports false if the memo is already at a newer tag (the caller's answer
// is older than what is kept, so it is not kept). Call with mu held.
func (m *directoryMemo) at(tag memoTag) bool {
	if m.ready() && m.tag != tag && !tag.newer(m.tag) {
		return false
	}
	if !m.ready() || m.tag != tag || len(m.offices) > directoryMemoMax || len(m.contacts) > directoryMemoMax ||
		len(m.schedules) > directoryMemoMax || len(m.conversations) > directoryMemoMax {
		m.tag = tag
		m.defaultOffice = map[struct{}]Office{}
		m.offices = map[string]messaging.OfficeSettings{}
		m.contacts = map[string]messaging.Contact{}
		m.schedules = map[string]messaging.Schedule{}
		m.conversations = map[userKey][]messaging.ConversationRef{}
	}
	return true
}

// kept returns the answer for k in the memo's map that field picks, if one
// was kept under tag, and otherwise makes it with load and keeps it.
func kept[K comparable, V any](m *directoryMemo, tag memoTag, field func(*directoryMemo) map[K]V, k K, load func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.ready() && m.tag == tag {
		if v, ok := field(m)[k]; ok {
			m.mu.Unlock()
			return v, nil
		}
	}
	m.mu.Unlock()
	v, err := load() // not under mu: a page waits for no other page's queries
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at(tag) {
		field(m)[k] = v
	}
	return v, nil
}

// pageTag holds the memo tag of one page, once read: a page asks the memo
// up to three times (footer, contact card, conversations), and one read of
// the versions at the page's start is as fresh as three during it.
type pageTag struct {
	mu  sync.Mutex
	tag memoTag
	ok  bool
}

type pageTagKey struct{}

// withPageTag returns ctx in which memoTag reads the versions only once.
func withPageTag(ctx context.Context) context.Context {
	return context.WithValue(ctx, pageTagKey{}, &pageTag{})
}

// memoTag returns the tag the memo's answers must have now: the two
// versions and today's Oslo date, read once per page under withPageTag.
func (s *Store) memoTag(ctx context.Context) (memoTag, error) {
	p, ok := ctx.Value(pageTagKey{}).(*pageTag)
	if !ok {
		return s.readMemoTag(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ok {
		tag, err := s.readMemoTag(ctx)
		if err != nil {
			return memoTag{}, err
		}
		p.tag, p.ok = tag, true
	}
	return p.tag, nil
}

// readMemoTag reads the two versions, in one statement, and today's Oslo
// date.
func (s *Store) readMemoTag(ctx context.Context) (memoTag, error) {
	var v struct {
		Access    int64 `db:"access"`
		Directory int64 `db:"directory"`
	}
	err := s.db.GetContext(ctx, &v, `
		SELECT (SELECT v FROM access_version WHERE id = 1) AS access,
		       (SELECT v FROM directory_version WHERE id = 1) AS directory`)
	if err != nil {
		return memoTag{}, fmt.Errorf("memo versions: %w", err)
	}
	return memoTag{access: v.Access, directory: v.Directory, day: messaging.DateOf(s.now()).String()}, nil
}

// footerOffice returns the default office (DefaultOffice) and its
// settings, for the footer of every page. ok is false if there is no
// office, or if its settings could not be read (then o may still be set).
func (s *Store) footerOffice(ctx context.Context) (o Office, settings messaging.OfficeSettings, ok bool, err error) {
	tag, err := s.memoTag(ctx)
	if err != nil {
		return Office{}, messaging.OfficeSettings{}, false, err
	}
	o, err = kept(&s.dir, tag, func(m *directoryMemo) map[struct{}]Office { return m.defaultOffice }, struct{}{},
		func() (Office, error) {
			o, err := s.DefaultOffice(ctx)
			if errors.Is(err, ErrNotFound) {
				return Office{}, nil
			}
			return o, err
		})
	if err != nil || o.ID == "" {
		return Office{}, messaging.OfficeSettings{}, false, err
	}
	settings, err = s.officeSettings(ctx, tag, o.ID)
	return o, settings, err == nil, err
}

// officeSettings is AvailabilityStore.OfficeSettings, kept under tag.
func (s *Store) officeSettings(ctx context.Context, tag memoTag, officeID string) (messaging.OfficeSettings, error) {
	return kept(&s.dir, tag, func(m *directoryMemo) map[string]messaging.OfficeSettings { return m.offices }, officeID,
		func() (messaging.OfficeSettings, error) {
			return messaging.NewAvailabilityStore(s.db).OfficeSettings(ctx, officeID)
		})
}

// keptNow is kept under the memo's tag as of now (memoTag); load is given
// that tag.
func keptNow[K comparable, V any](ctx context.Context, s *Store, field func(*directoryMemo) map[K]V, k K, load func(memoTag) (V, error)) (V, error) {
	tag, err := s.memoTag(ctx)
	if err != nil {
		var zero V
		return zero, err
	}
	return kept(&s.dir, tag, field, k, func() (V, error) { return load(tag) })
}

// caseContact is AvailabilityStore.CaseContact at now, kept for the day:
// a contact depends on the date only through the absence that covers it.
// The caller has authorized the viewer for caseID.
func (s *Store) caseContact(ctx context.Context, caseID string) (messaging.Contact, error) {
	return keptNow(ctx, s, func(m *directoryMemo) map[string]messaging.Contact { return m.contacts }, caseID,
		func(memoTag) (messaging.Contact, error) {
			return messaging.NewAvailabilityStore(s.db).CaseContact(ctx, caseID, s.now())
		})
}

// ownSchedule is member of staff userID's own schedule on their office's
// settings (what outsideChatHours asks), kept under the memo's tag.
func (s *Store) ownSchedule(ctx context.Context, userID string) (messaging.Schedule, error) {
	return keptNow(ctx, s, func(m *directoryMemo) map[string]messaging.Schedule { return m.schedules }, userID,
		func(tag memoTag) (messaging.Schedule, error) {
			a := messaging.NewAvailabilityStore(s.db)
			officeID, err := a.UserOffice(ctx, userID)
			if err != nil {
				return messaging.Schedule{}, err
			}
			office, err := s.officeSettings(ctx, tag, officeID)
			if err != nil {
				return messaging.Schedule{}, err
			}
			return a.Schedule(ctx, userID, office)
		})
}
