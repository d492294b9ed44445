/* herenow-chat.js: PLACEHOLDER for the chat script (docs/CHAT.md §2, §7), loaded by the core
 * script when a beacon answer names it; the real script replaces this file and its .min.js.
 * The collector replaces @HN_B@, @HN_P@ and @HN_V@ by its beacon, pixel and downlink paths. */
(function () {
    'use strict';
    window.herenowChat = window.herenowChat || { downlink: '@HN_V@', beacon: '@HN_B@' };
})();
