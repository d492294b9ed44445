// The tawk.to stand-in: what the test looks at is window.__tawk.
window.__tawk = { maximized: 0 };
var Tawk_API = Tawk_API || {};
Tawk_API.maximize = function () { window.__tawk.maximized++; };

// the adapter, word for word from docs/WIDGET.md §6
var herenowInvite = null;
window.addEventListener('herenow:invite', function (e) {
  if (!Tawk_API.maximize) return;            // tawk.to not loaded: keep the built-in bubble
  e.preventDefault();
  herenowInvite = e.detail.conversation;
  Tawk_API.maximize();
});
Tawk_API.onChatStarted = function () {
  if (herenowInvite) herenow('chat', 'accept', herenowInvite), herenowInvite = null;
};
