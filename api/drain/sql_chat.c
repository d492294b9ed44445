/*
 * sql_chat.c: the drain's chat statements (sql.h, docs/CHAT.md §5), run in
 * the batch's transaction after the sessions, in this order, over hn_chat
 * (batch.c's COPY of the batch's `msg` records and invitation events):
 *
 *   foreign    a conversation id of another widget or session is none
 *   resolve    a message without a conversation joins the session's open
 *              one, else opens one whose id is the session's first such
 *              message's event id (so a redelivery makes the same one)
 *   open       conversations of messages that PostgreSQL does not know:
 *              started by the visitor
 *   messages   the messages (id = event_id: ON CONFLICT DO NOTHING), and
 *              the conversations' counts from what was inserted
 *   states     each conversation moves to the highest state its events
 *              reach (hn_chat_state_rank), timestamps of each step once;
 *              an `accepted` or `declined` that comes after the invitation
 *              expired wins (the page had not heard of the expiry, or the
 *              answer raced it: the visitor's word beats the clock), a late
 *              shown leaves it expired
 *   session    widget_visitor_sessions.conversation_id: the latest
 *   webhooks   lifecycle webhooks (docs/RULES.md §4) of widgets that have
 *              one enabled, through hn_webhook_enqueue (sql/007_rules.sql):
 *              chat.started of a conversation now chatting, chat.message of
 *              each visitor message, chat.closed of one now closed — each
 *              once per subject (its unique index), in that order
 *
 * Records already written (a redelivered batch) are not in hn_chat at all
 * (batch.c leaves them out), so counts move exactly once.
 */
#include "api/drain/sql.h"

#include <stddef.h>

const char hn_drain_sql_copy_chat[] = "COPY hn_chat FROM STDIN";

const char *const hn_drain_sql_chat[] = {
    /* foreign */
    "UPDATE hn_chat c SET ci = NULL FROM widget_conversations v"
    " WHERE v.id = c.ci AND (v.widget_id <> c.widget_id OR v.session_id <> c.session_id)",
    /* resolve */
    "UPDATE hn_chat c SET ci = coalesce((SELECT v.id FROM widget_conversations v"
    "   WHERE v.widget_id = c.widget_id AND v.session_id = c.session_id AND v.state <> 'closed'"
    "   ORDER BY v.created_at DESC LIMIT 1), f.event_id)"
    " FROM (SELECT DISTINCT ON (widget_id, session_id) widget_id, session_id, event_id"
    "  FROM hn_chat WHERE kind = 'msg' AND ci IS NULL"
    "  ORDER BY widget_id, session_id, recv_at, event_id) f"
    " WHERE c.kind = 'msg' AND c.ci IS NULL AND f.widget_id = c.widget_id"
    " AND f.session_id = c.session_id",
    /* open */
    "INSERT INTO widget_conversations (id, widget_id, session_id, visitor_id, visitor_hash,"
    "  started_by, state, created_at, chatting_at, updated_at)"
    " SELECT DISTINCT ON (ci) ci, widget_id, session_id, visitor_id, vh, 'visitor', 'chatting',"
    "  recv_at, recv_at, now() FROM hn_chat WHERE kind = 'msg' ORDER BY ci, recv_at"
    " ON CONFLICT (id) DO NOTHING",
    /* messages */
    "WITH m AS ("
    " INSERT INTO widget_conversation_messages (id, conversation_id, widget_id, sender, body, sent_at)"
    " SELECT event_id, ci, widget_id, 'visitor', body, recv_at FROM hn_chat"
    "  WHERE kind = 'msg' ORDER BY recv_at, event_id"
    " ON CONFLICT (id) DO NOTHING RETURNING conversation_id, sent_at)"
    " UPDATE widget_conversations v SET messages = v.messages + x.n,"
    "  last_message_at = greatest(v.last_message_at, x.last), updated_at = now()"
    " FROM (SELECT conversation_id, count(*) AS n, max(sent_at) AS last FROM m GROUP BY 1) x"
    " WHERE v.id = x.conversation_id",
    /* states */
    "WITH e AS ("
    " SELECT ci, recv_at, CASE kind WHEN 'msg' THEN 'chatting' WHEN 'invite_shown' THEN 'shown'"
    "  WHEN 'invite_accepted' THEN 'accepted' WHEN 'invite_declined' THEN 'declined'"
    "  ELSE 'closed' END AS st FROM hn_chat WHERE ci IS NOT NULL),"
    " x AS (SELECT ci,"
    "  (array_agg(st ORDER BY hn_chat_state_rank(st) DESC, recv_at DESC))[1] AS st,"
    "  min(recv_at) FILTER (WHERE st = 'shown') AS shown,"
    "  min(recv_at) FILTER (WHERE st = 'accepted') AS accepted,"
    "  min(recv_at) FILTER (WHERE st = 'declined') AS declined,"
    "  min(recv_at) FILTER (WHERE st = 'chatting') AS chatting,"
    "  min(recv_at) FILTER (WHERE st = 'closed') AS closed FROM e GROUP BY ci)"
    " UPDATE widget_conversations v SET"
    "  state = CASE WHEN hn_chat_state_rank(x.st) > hn_chat_state_rank(v.state)"
    "   OR (v.state = 'expired' AND x.st IN ('accepted', 'declined')) THEN x.st ELSE v.state END,"
    "  shown_at = coalesce(v.shown_at, x.shown), accepted_at = coalesce(v.accepted_at, x.accepted),"
    "  declined_at = coalesce(v.declined_at, x.declined),"
    "  chatting_at = coalesce(v.chatting_at, x.chatting),"
    "  closed_at = coalesce(v.closed_at, x.closed), updated_at = now()"
    " FROM x WHERE v.id = x.ci",
    /* session */
    "UPDATE widget_visitor_sessions s SET conversation_id = x.id"
    " FROM (SELECT DISTINCT ON (c.widget_id, c.session_id) c.widget_id, c.session_id, v.id,"
    "   v.created_at FROM hn_chat c JOIN widget_conversations v ON v.id = c.ci"
    "  ORDER BY c.widget_id, c.session_id, v.created_at DESC) x"
    " WHERE s.widget_id = x.widget_id AND s.session_id = x.session_id"
    " AND s.conversation_id IS DISTINCT FROM x.id"
    " AND (s.conversation_id IS NULL OR x.created_at >= (SELECT o.created_at"
    "  FROM widget_conversations o WHERE o.id = s.conversation_id))",
    /* webhooks */
    "SELECT count(*) FROM (SELECT hn_webhook_enqueue(e.widget_id, e.ev, e.subject, e.session_id,"
    "  e.ci, e.mid) FROM ("
    "  SELECT DISTINCT v.widget_id, 'chat.started' AS ev, v.id::text AS subject, v.session_id,"
    "   v.id AS ci, NULL::uuid AS mid, 1 AS o, v.chatting_at AS t"
    "   FROM hn_chat c JOIN widget_conversations v ON v.id = c.ci WHERE v.chatting_at IS NOT NULL"
    "  UNION ALL"
    "  SELECT c.widget_id, 'chat.message', c.event_id::text, c.session_id, c.ci, c.event_id, 2,"
    "   c.recv_at FROM hn_chat c WHERE c.kind = 'msg' AND c.ci IS NOT NULL"
    "  UNION ALL"
    "  SELECT DISTINCT v.widget_id, 'chat.closed', v.id::text, v.session_id, v.id, NULL::uuid, 3,"
    "   v.closed_at FROM hn_chat c JOIN widget_conversations v ON v.id = c.ci"
    "   WHERE v.state = 'closed') e"
    " WHERE EXISTS (SELECT 1 FROM widget_webhooks h WHERE h.widget_id = e.widget_id AND h.enabled)"
    " ORDER BY e.o, e.t) q",
    NULL,
};
