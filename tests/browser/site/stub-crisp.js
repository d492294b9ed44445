// The Crisp stand-in: pushes are recorded in window.__crisp; "on" listeners
// are kept so that the test can fire chat:opened.
window.__crisp = { pushed: [], on: {} };
window.$crisp = window.$crisp || [];
$crisp.push = function (cmd) {
  window.__crisp.pushed.push(cmd);
  if (cmd[0] === 'on') window.__crisp.on[cmd[1]] = cmd[2];
};

// the adapter, word for word from docs/WIDGET.md §6
var herenowInvite = null;
window.addEventListener('herenow:invite', function (e) {
  e.preventDefault();
  herenowInvite = e.detail.conversation;
  $crisp.push(['do', 'message:show', ['text', e.detail.agent + ': ' + e.detail.text]]);
  $crisp.push(['do', 'chat:open']);
});
$crisp.push(['on', 'chat:opened', function () {
  if (herenowInvite) herenow('chat', 'accept', herenowInvite), herenowInvite = null;
}]);
