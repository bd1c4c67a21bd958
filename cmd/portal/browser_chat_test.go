package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chatWait bounds each wait for something to happen live in the chat.
const chatWait = 20 * time.Second

// wsProbeJS counts, on every new document, the page's websockets that have
// said hello (docs/protocol.md), so a test knows when app.js sends over the
// socket instead of posting the form. It only observes; the socket is the
// page's own.
const wsProbeJS = `(() => {
  const W = window.WebSocket;
  if (!W) return;
  window.__wsHello = 0;
  window.WebSocket = class extends W {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", ev => {
        try { if (JSON.parse(ev.data).type === "hello") window.__wsHello++; } catch (e) {}
      });
      this.addEventListener("close", () => { window.__wsHello = 0; });
    }
  };
})()`

// probeSockets installs wsProbeJS for every page v opens from now on.
func (v *visitor) probeSockets() {
	v.t.Helper()
	v.do("install the websocket probe", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: wsProbeJS})
		return err
	}))
}

// waitFor polls the JavaScript expression expr until it is truthy, for at
// most chatWait.
func (v *visitor) waitFor(what, expr string) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, chatWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(chatWait))); err != nil {
		v.t.Fatalf("%s: waited %s (%s, at %s): %v\nportal log:\n%s", what, chatWait, v.who(), v.path(), err, lastLines(v.p.logs.String(), 20))
	}
}

// say types body into the chat box and presses send.
func (v *visitor) say(body string) {
	v.t.Helper()
	v.do("write "+body,
		chromedp.SendKeys(chromedp.CSS(`#chat form.write textarea[name="body"]`), body, chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`#chat form.write button[type="submit"]`), chromedp.NodeVisible),
	)
}

// bubbleJS finds the message bubble in the chat whose body is exactly
// body, among own ones (mine) or others'.
func bubbleJS(body string, mine bool) string {
	sel := `#chat .messages li.msg:not(.mine)`
	if mine {
		sel = `#chat .messages li.msg.mine`
	}
	return fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).find(li => {
		const b = li.querySelector("span.body");
		return b && b.textContent === %q;
	})`, sel, body)
}

// TestBrowser_chatLive: Sara signs in, opens her case and a document on
// it, and writes in the chat; Kari, in a browser context of her own and
// already on the conversation, sees the message arrive live and answers;
// Sara sees the answer arrive without the page reloading. Message bodies
// are shown as text, never as HTML.
func TestBrowser_chatLive(t *testing.T) {
	b := newBrowser(t, false)
	p := startPortal(t)
	sara, kari := b.visitor(t, p, "sara"), b.visitor(t, p, "kari")
	sara.probeSockets()
	kari.probeSockets()

	// Sara: her one case, then a document from the case page's list, and back.
	casePath := sara.path()
	if !regexp.MustCompile(`^/cases/[^/]+$`).MatchString(casePath) {
		t.Fatalf("after sign-in Sara is at %s, want her one case", casePath)
	}
	sara.open(casePath) // again, now with the probe in place
	if n := eval[int](sara, `document.querySelectorAll("main .docs a.doc-title").length`); n == 0 {
		t.Fatal("Sara's case page lists no documents")
	}
	title := sara.text("main .docs a.doc-title")
	if st := sara.follow(`main .docs a.doc-title`); st != 200 {
		t.Fatalf("opening the document %q: status %d", title, st)
	}
	if !strings.HasPrefix(sara.path(), "/documents/") {
		t.Fatalf("after clicking %q Sara is at %s, want a /documents/ page", title, sara.path())
	}
	if h1 := sara.text("main h1"); h1 != title {
		t.Errorf("document page heading = %q, want %q", h1, title)
	}
	sara.open(casePath)
	sara.setLanguage("nb") // Bokmål, whatever the browser's own language
	sara.waitFor("Sara's chat socket says hello", `window.__wsHello > 0`)
	conv := eval[string](sara, `document.getElementById("chat").dataset.conversation`)
	received := eval[string](sara, `document.getElementById("chat").dataset.tReceived`)
	if received != "Mottatt av barneverntjenesten" {
		t.Errorf("Sara's acknowledged state reads %q, want %q", received, "Mottatt av barneverntjenesten")
	}

	// Kari: the inbox, then Emma – Sara Hansen's conversation.
	kari.open("/inbox?show=all")
	const convTitle = "Emma – Sara Hansen"
	href := eval[string](kari, fmt.Sprintf(`(Array.from(document.querySelectorAll("main .inbox a"))
		.find(a => a.textContent.trim() === %q) || {getAttribute: () => ""}).getAttribute("href")`, convTitle))
	if href == "" {
		t.Fatalf("Kari's inbox has no conversation %q", convTitle)
	}
	kari.follow(fmt.Sprintf(`main .inbox a[href=%q]`, href))
	if got := eval[string](kari, `document.getElementById("chat").dataset.conversation`); got != conv {
		t.Fatalf("Kari's conversation page shows conversation %q, Sara's case %q", got, conv)
	}
	kari.setLanguage("nb")
	kari.waitFor("Kari's chat socket says hello", `window.__wsHello > 0`)
	sent := eval[string](kari, `document.getElementById("chat").dataset.tSent`)

	// Marks that vanish if either page reloads.
	sara.do("mark Sara's page", chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`))
	kari.do("mark Kari's page", chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`))

	// Sara writes; the body looks like HTML and must stay text.
	stamp := time.Now().Format("150405.000000")
	question := "<b>x</b> Når er neste møte? " + stamp
	sara.say(question)
	sara.waitFor("Sara's message is acknowledged", fmt.Sprintf(`(() => {
		const li = %s;
		const st = li && li.querySelector(".state");
		return !!st && st.textContent === %q;
	})()`, bubbleJS(question, true), received))
	if v := eval[bool](sara, `document.getElementById("chat").querySelector("textarea").value === ""`); !v {
		t.Error("Sara's chat box was not emptied after sending")
	}

	// Kari sees it arrive, from Sara, without reloading.
	kari.waitFor("Kari sees Sara's message live", fmt.Sprintf(`!!(%s)`, bubbleJS(question, false)))
	if sender := eval[string](kari, fmt.Sprintf(`(%s).querySelector(".sender").textContent.trim()`, bubbleJS(question, false))); !strings.Contains(sender, "Sara") {
		t.Errorf("Kari sees the message from %q, want Sara", sender)
	}

	// Kari answers.
	answer := "Vi møtes tirsdag kl. 10. Hilsen Kari " + stamp
	kari.say(answer)
	kari.waitFor("Kari's answer is acknowledged", fmt.Sprintf(`(() => {
		const li = %s;
		const st = li && li.querySelector(".state");
		return !!st && st.textContent === %q;
	})()`, bubbleJS(answer, true), sent))

	// Sara sees the answer, without reloading.
	sara.waitFor("Sara sees Kari's answer live", fmt.Sprintf(`!!(%s)`, bubbleJS(answer, false)))

	for _, v := range []*visitor{sara, kari} {
		if !eval[bool](v, `window.__noReload === 1`) {
			t.Errorf("%s's page was reloaded during the chat", v.who())
		}
		if n := eval[int](v, `document.querySelectorAll("#chat .messages b").length`); n != 0 {
			t.Errorf("%s's chat has %d <b> elements: a message body was rendered as HTML", v.who(), n)
		}
		if n := eval[int](v, fmt.Sprintf(`Array.from(document.querySelectorAll("#chat .messages span.body")).filter(b => b.textContent === %q).length`, question)); n != 1 {
			t.Errorf("%s's chat shows the message %d times, want once", v.who(), n)
		}
	}
}
