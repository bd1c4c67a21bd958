// Familieportal: small, dependency-free enhancements. Every page works
// without this file. No personal data is ever put in storage.
"use strict";

// Quick exit: replace this page in the history, so "back" does not return
// to the portal, and go to a neutral website.
document.addEventListener("DOMContentLoaded", function () {
  var exit = document.getElementById("quick-exit");
  if (!exit) return;
  exit.addEventListener("click", function (ev) {
    ev.preventDefault();
    window.location.replace(exit.href);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && ev.shiftKey) window.location.replace(exit.href);
  });
});

// Live chat over one websocket per tab (protocol v1, docs/protocol.md).
// The page already shows the conversation and a form that posts without
// JavaScript; this script takes over the form, shows new messages live,
// and keeps what the person sends safe: each message has a client id, is
// shown as "sending" until the server acknowledges it after commit, and
// can be retried with the same id (the server never stores it twice).
document.addEventListener("DOMContentLoaded", function () {
  var chat = document.getElementById("chat");
  if (!chat || !window.WebSocket) return;
  var convID = chat.dataset.conversation;
  var viewer = chat.dataset.viewer;
  var staff = chat.dataset.staff === "true";
  var lastSeq = parseInt(chat.dataset.lastSeq || "0", 10);
  var list = chat.querySelector(".messages");
  var form = chat.querySelector("form.write");
  var box = form.querySelector("textarea");
  var typingLine = chat.querySelector(".typing");
  var t = chat.dataset;
  var pending = {}; // client id -> {li, body}
  var ws = null, backoff = 1000, typingSent = 0, typingTimer = null;

  function newClientID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function clock(iso) {
    var d = new Date(iso);
    var hm = ("0" + d.getHours()).slice(-2) + (document.documentElement.lang === "en" ? ":" : ".") + ("0" + d.getMinutes()).slice(-2);
    return document.documentElement.lang === "en" ? hm : "kl. " + hm;
  }

  function bubble(mine, kind, senderLabel, body, at) {
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var li = document.createElement("li");
    li.className = "msg" + (mine ? " mine" : "") + (kind !== "text" ? " system" : "");
    if (!mine) {
      var s = document.createElement("span");
      s.className = "sender";
      s.textContent = senderLabel;
      li.appendChild(s);
    }
    var b = document.createElement("span");
    b.className = "body";
    b.textContent = body; // always text, never HTML
    li.appendChild(b);
    var w = document.createElement("time");
    w.className = "when";
    if (at) { w.dateTime = at; w.textContent = clock(at); }
    li.appendChild(w);
    list.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  function setState(p, text, failed) {
    var st = p.li.querySelector(".state");
    if (!st) {
      st = document.createElement(failed ? "button" : "span");
      st.className = "state";
      p.li.appendChild(st);
    }
    if (failed && st.tagName !== "BUTTON") {
      var btn = document.createElement("button");
      btn.className = "state";
      st.replaceWith(btn);
      st = btn;
    }
    if (failed) {
      st.type = "button";
      st.onclick = function () { transmit(p); };
    }
    st.textContent = text;
  }

  function transmit(p) {
    setState(p, t.tSending, false);
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "send", conversation: convID, client_id: p.id, body: p.body }));
    }
    clearTimeout(p.timer);
    p.timer = setTimeout(function () { if (pending[p.id]) setState(p, t.tFailed, true); }, 10000);
  }

  function show(m) {
    if (m.conversation !== convID || m.seq <= lastSeq) return;
    if (m.seq > lastSeq + 1) { sync(); return; } // a gap: fetch what is missing, in order
    lastSeq = m.seq;
    var mine = m.sender && m.sender.id === viewer;
    if (!mine) {
      var label = m.kind === "text" ? m.sender.name : chat.dataset.tAutoReply || "";
      bubble(false, m.kind, label, m.body, m.at);
      typingLine.hidden = true;
      if (document.visibilityState === "visible") send({ type: "read", conversation: convID, seq: m.seq });
    } else if (Object.keys(pending).length === 0 && !list.querySelector('[data-seq="' + m.seq + '"]')) {
      // Sent from another tab. (While this tab waits for its own ack, the
      // ack places the bubble; the frame only moves the cursor.)
      bubble(true, m.kind, "", m.body, m.at).dataset.seq = m.seq;
    }
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  function sync() {
    var cursors = {};
    cursors[convID] = lastSeq;
    send({ type: "sync", cursors: cursors });
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws");
    ws.onopen = function () { backoff = 1000; chat.classList.remove("offline"); };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      switch (f.type) {
        case "hello":
          sync();
          for (var id in pending) transmit(pending[id]); // resend: same id, stored once
          break;
        case "ack":
          var p = pending[f.client_id];
          if (!p) break;
          clearTimeout(p.timer);
          delete pending[f.client_id];
          p.li.dataset.seq = f.seq;
          var w = p.li.querySelector(".when");
          w.dateTime = f.at; w.textContent = clock(f.at);
          setState(p, staff ? t.tSent : t.tReceived, false);
          if (f.conversation === convID) {
            if (f.seq === lastSeq + 1) lastSeq = f.seq;
            else if (f.seq > lastSeq) sync(); // someone else's message is on its way: fetch in order
          }
          break;
        case "message":
          show(f);
          break;
        case "typing":
          if (f.conversation !== convID) break;
          typingLine.textContent = t.tTyping;
          typingLine.hidden = false;
          clearTimeout(typingTimer);
          typingTimer = setTimeout(function () { typingLine.hidden = true; }, 5000);
          break;
        case "availability":
          // The chat opened or closed: fetch this page again and take its
          // line about when we answer, already in the reader's language.
          if (f.conversation !== convID) break;
          var line = document.getElementById("chat-hours-" + convID);
          if (!line) break;
          fetch(location.href, { credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.text() : null; })
            .then(function (html) {
              if (!html) return;
              var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(line.id);
              if (fresh) line.textContent = fresh.textContent;
            })
            .catch(function () {});
          break;
        case "resync_required":
          location.reload();
          break;
        case "error":
          if (f.client_id && pending[f.client_id]) {
            var q = pending[f.client_id];
            clearTimeout(q.timer);
            setState(q, f.message || t.tFailed, f.code === "unavailable" || f.code === "rate_limited");
            if (f.code !== "unavailable" && f.code !== "rate_limited") delete pending[f.client_id];
          }
          break;
      }
    };
    ws.onclose = function () {
      chat.classList.add("offline");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  form.addEventListener("submit", function (ev) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // no socket: the plain form post works
    ev.preventDefault();
    var body = box.value;
    if (!body.trim()) return;
    var p = { id: newClientID(), body: body };
    p.li = bubble(true, "text", "", body, null);
    pending[p.id] = p;
    box.value = "";
    transmit(p);
  });
  box.addEventListener("input", function () {
    var now = Date.now();
    if (now - typingSent > 3000) { typingSent = now; send({ type: "typing", conversation: convID }); }
  });
  connect();
});
