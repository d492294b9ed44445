-- 005_chat_expire: unanswered invitations expire (docs/CHAT.md §5).
--
-- The drain's worker 0 of every api process looks every few seconds for
-- invitations still `invited` or `shown` after HERENOW_CHAT_INVITE_TTL_S
-- (api/drain/expire.c). Only those rows are in this index, so the look costs
-- a few pages however many conversations the table holds; the expression is
-- the one the statement orders and filters by.
CREATE INDEX widget_conversations_unanswered ON widget_conversations
    ((coalesce(invited_at, created_at))) WHERE state IN ('invited', 'shown');
