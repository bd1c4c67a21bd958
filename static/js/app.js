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
