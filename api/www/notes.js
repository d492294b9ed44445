// api/www/notes.js: notes, tags and bans on visitors in the dashboard
// (docs/RULES.md §5, §6; docs/DASHBOARD.md).
//
//   GET …/annotations ── at start, after our own edits, every 30 s ──► ann (by visitor id, by email)
//        │                                                                │
//        │                       live rows: tag chips, a note marker, "banned" (annoChips)
//        │                       the Tag filter (client-side: follows stream updates too)
//        ▼
//   details: a section kept across the dialog's re-renders (typed text survives):
//     tags (POST …/visitor-tags), notes (GET/POST …/visitor-notes, DELETE …/visitor-notes/:id),
//     ban / unban (POST …/bans, DELETE …/bans/:id) with "also block tracking"
//
// A subject is {visitor: id} or {email: address}. Notes and tags are agents' text: text nodes only.
import { h, put, api, state, $, rows, changed, timeEl, dateTimeFmt } from './app.js';

const REFRESH_MS = 30000;
const TAG_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

// visitor id / email (lower-cased) → {tags: [], notes: n, ban: {id, block_tracking} | null}
const ann = { visitor: new Map(), email: new Map(), loaded: false, gen: 0, timer: null };

// An answer's item, whatever it names its subject: {visitor} / {email} or {subject_kind, subject}.
function subjectOf(a) {
  if (a.visitor != null) return ['visitor', String(a.visitor)];
  if (a.email != null) return ['email', String(a.email).toLowerCase()];
  if (a.subject_kind && a.subject != null) return [a.subject_kind, a.subject_kind === 'email' ? String(a.subject).toLowerCase() : String(a.subject)];
  return [null, null];
}

function banOf(a) {
  if (a.ban && typeof a.ban === 'object') return { id: a.ban.id, block_tracking: !!a.ban.block_tracking };
  if (a.banned || a.ban_id != null) return { id: a.ban_id ?? null, block_tracking: !!a.block_tracking };
  return null;
}

export async function loadAnnotations() {
  clearTimeout(ann.timer);
  if (!state.widget) return;
  const gen = ++ann.gen, wgen = state.gen;
  let r;
  try {
    r = await api(`/widgets/${state.widget.id}/annotations`);
  } catch {
    r = null;                       // an api without it: the rows' own tags/notes/banned
  }
  if (gen !== ann.gen || wgen !== state.gen) return;
  if (r) {
    ann.visitor = new Map();
    ann.email = new Map();
    for (const a of r.annotations || r.subjects || []) {
      const [kind, key] = subjectOf(a);
      if (!kind || !ann[kind]) continue;
      ann[kind].set(key, {
        tags: Array.isArray(a.tags) ? a.tags.map(String) : [],
        notes: typeof a.notes === 'number' ? a.notes : Array.isArray(a.notes) ? a.notes.length : +a.notes_count || 0,
        ban: banOf(a),
      });
    }
    ann.loaded = true;
    refill();
  }
  ann.timer = setTimeout(loadAnnotations, REFRESH_MS);
}

export function resetNotes() {
  clearTimeout(ann.timer);
  ann.gen++;
  ann.visitor = new Map();
  ann.email = new Map();
  ann.loaded = false;
  detailsSection.sid = null;
  vids.clear();
  updateTagFilter();
}

// Every row is filled again (its chips), the Tag filter's choices follow.
function refill() {
  for (const row of rows.values()) row.rev = -1;
  updateTagFilter();
  changed();
}

// A live item's `visitor` is the daily visitor hash; a subject's visitor id is the
// sessions' visitor_id (the site's persistent id when it sends one, else that hash).
// The details tell a session's visitor_id: remembered here for its row.
const vids = new Map();          // session id → visitor_id (from the details)

// What we know of a live item's visitor: the annotations of its visitor id and of its
// email merged; where they say nothing of it (or are not loaded, or the api has no
// such route), the item's own tags / notes / banned (the live stream's, docs/RULES.md §5).
export function annoOf(v) {
  const known = vids.get(v.session_id) || v.visitor_id;
  const a = ann.visitor.get(String(known || v.visitor || '')), b = v.email ? ann.email.get(String(v.email).toLowerCase()) : null;
  if (!ann.loaded || (!a && !b && !known)) {
    return { tags: Array.isArray(v.tags) ? v.tags : [], notes: +v.notes || 0, banned: !!v.banned };
  }
  return {
    tags: [...new Set([...(a ? a.tags : []), ...(b ? b.tags : [])])],
    notes: (a ? a.notes : 0) + (b ? b.notes : 0),
    banned: !!((a && a.ban) || (b && b.ban)),
  };
}

export const hasTag = (v, tag) => annoOf(v).tags.includes(tag);

// The row's chips: tags, a note marker with the count, "banned".
export function annoChips(v) {
  const a = annoOf(v);
  if (!a.tags.length && !a.notes && !a.banned) return null;
  return h('span', { class: 'anno' },
    a.banned ? h('span', { class: 'chip banned', text: 'banned' }) : null,
    a.tags.map(t => h('span', { class: 'chip tag', dataset: { tag: t }, text: t })),
    a.notes ? h('span', { class: 'note-mark', title: `${a.notes} note${a.notes === 1 ? '' : 's'}`, text: `✎ ${a.notes}` }) : null);
}

function updateTagFilter() {
  const sel = $('f-tag');
  const all = new Set();
  for (const m of [ann.visitor, ann.email]) for (const a of m.values()) for (const t of a.tags) all.add(t);
  if (state.filter.tag) all.add(state.filter.tag);
  const list = [...all].sort();
  const key = list.join(',');
  if (sel.dataset.key === key) return;
  sel.dataset.key = key;
  put(sel, h('option', { value: '', text: 'all' }), ...list.map(t => h('option', { value: t, text: t })));
  sel.value = state.filter.tag;
}

export function initNotes() {
  updateTagFilter();
}

// ---- the details' section ------------------------------------------------------

// One element per opened session, put back into the dialog at every re-render.
const detailsSection = { sid: null, el: null, subject: null, gen: 0 };

const subjectBody = s => (s.kind === 'email' ? { email: s.key } : { visitor: s.key });
const subjectQuery = s => `${s.kind}=${encodeURIComponent(s.key)}`;

// annoSection(d): the notes, tags and ban of d's visitor (d: GET /sessions/:sid).
export function annoSection(d) {
  if (!d.visitor_id && !d.visitor_email) return null;
  if (d.visitor_id && vids.get(d.session_id) !== String(d.visitor_id)) {
    vids.set(d.session_id, String(d.visitor_id));
    refill();
  }
  // the dialog re-renders the same session: the same element (connected until a new one opens)
  if (detailsSection.sid === d.session_id && detailsSection.el && detailsSection.el.isConnected) return detailsSection.el;
  detailsSection.sid = d.session_id;
  detailsSection.gen++;
  const subjects = [];
  if (d.visitor_id) subjects.push({ kind: 'visitor', key: String(d.visitor_id), label: `visitor ${d.visitor_id}` });
  if (d.visitor_email) subjects.push({ kind: 'email', key: String(d.visitor_email).toLowerCase(), label: `email ${d.visitor_email}` });
  detailsSection.subject = subjects[0];
  detailsSection.msg = null;
  const el = h('section', { class: 'd-anno', id: 'd-anno' });
  detailsSection.el = el;
  const pick = subjects.length > 1
    ? h('label', { class: 'anno-subject' }, 'About ', h('select', {
      id: 'anno-subject',
      onchange: e => { detailsSection.subject = subjects[+e.target.value]; fillSection(); },
    }, subjects.map((s, i) => h('option', { value: i, text: s.label }))))
    : h('p', { class: 'muted anno-subject', text: `About ${subjects[0].label}` });
  put(el, h('h3', { text: 'Notes, tags and ban' }), pick, h('div', { class: 'anno-parts' }));
  fillSection();
  return el;
}

async function fillSection() {
  const el = detailsSection.el, s = detailsSection.subject, gen = ++detailsSection.gen;
  const parts = el.querySelector('.anno-parts');
  const a = ann[s.kind].get(s.key) || { tags: [], notes: 0, ban: null };
  // the last word stays when the section is filled again (after a ban, say)
  const msg = h('span', { class: 'muted anno-msg', id: 'anno-msg', role: 'status' });
  const say = (text, bad) => {
    detailsSection.msg = { text, bad };
    msg.textContent = text;
    msg.className = bad ? 'error anno-msg' : 'muted anno-msg';
  };
  if (detailsSection.msg) say(detailsSection.msg.text, detailsSection.msg.bad);

  // tags: one field, comma or space separated
  const tagInput = h('input', { id: 'anno-tags', type: 'text', value: a.tags.join(', '), placeholder: 'vip, lead', autocomplete: 'off', spellcheck: 'false' });
  const saveTags = async () => {
    const tags = tagInput.value.split(/[\s,]+/).map(t => t.trim().toLowerCase()).filter(Boolean);
    const bad = tags.find(t => !TAG_RE.test(t));
    if (bad) return say(`not a tag: "${bad}" (a-z, 0-9, _ and -, up to 32)`, true);
    try {
      await api(`/widgets/${state.widget.id}/visitor-tags`, { method: 'POST', body: { ...subjectBody(s), tags } });
      say('Tags saved.');
      await loadAnnotations();
      const now = ann[s.kind].get(s.key);       // as stored: lower-cased, duplicates gone
      tagInput.value = (now ? now.tags : []).join(', ');
    } catch (e) { say(`Could not save the tags: ${e.message}`, true); }
  };
  const tags = h('form', { class: 'anno-tags', onsubmit: e => { e.preventDefault(); saveTags(); } },
    h('label', { for: 'anno-tags', text: 'Tags' }), tagInput,
    h('button', { type: 'submit', id: 'anno-tags-save', text: 'Save tags' }));

  // notes: newest first, each with Delete; a box to add one
  const list = h('ol', { class: 'anno-notes', id: 'anno-notes' }, h('li', { class: 'muted', text: 'Loading notes…' }));
  const noteText = h('textarea', { id: 'anno-note', rows: 2, maxlength: 2000, placeholder: 'Add a note about this visitor…' });
  const addNote = h('form', { class: 'anno-add', onsubmit: async e => {
    e.preventDefault();
    const body = noteText.value.trim();
    if (!body) return say('write the note first', true);
    try {
      await api(`/widgets/${state.widget.id}/visitor-notes`, { method: 'POST', body: { ...subjectBody(s), body } });
      noteText.value = '';
      say('Note added.');
      loadNotes(list, s, gen, say);
      loadAnnotations();
    } catch (e2) { say(`Could not add the note: ${e2.message}`, true); }
  } }, noteText, h('button', { type: 'submit', id: 'anno-note-add', text: 'Add note' }));

  // ban / unban
  const ban = a.ban;
  const block = h('input', { type: 'checkbox', id: 'anno-block' });
  const reason = h('input', { type: 'text', id: 'anno-reason', placeholder: 'reason (optional)', maxlength: 500 });
  const banPart = ban
    ? h('div', { class: 'anno-ban banned' },
      h('strong', { text: ban.block_tracking ? 'Banned (chat and tracking)' : 'Banned (chat)' }),
      h('button', { type: 'button', id: 'anno-unban', text: 'Unban', onclick: () => unban(s, ban, say) }))
    : h('div', { class: 'anno-ban' },
      h('label', null, block, ' also block tracking'), reason,
      h('button', { type: 'button', id: 'anno-ban', class: 'danger', text: 'Ban', onclick: async () => {
        const what = block.checked ? 'chat and tracking' : 'chat';
        if (!confirm(`Ban ${s.label} (${what})?`)) return;
        try {
          await api(`/widgets/${state.widget.id}/bans`, { method: 'POST',
            body: { ...subjectBody(s), block_tracking: block.checked, ...(reason.value.trim() ? { reason: reason.value.trim() } : {}) } });
          say('Banned.');
          await loadAnnotations();
          if (gen === detailsSection.gen) fillSection();
        } catch (e) { say(`Could not ban: ${e.message}`, true); }
      } }));

  put(parts, tags, h('h4', { text: 'Notes' }), list, addNote, h('h4', { text: 'Ban' }), banPart, msg);
  loadNotes(list, s, gen, say);
}

async function loadNotes(list, s, gen, say) {
  let r;
  try {
    r = await api(`/widgets/${state.widget.id}/visitor-notes?${subjectQuery(s)}`);
  } catch (e) {
    if (gen === detailsSection.gen) put(list, h('li', { class: 'error', text: `Notes: ${e.message}` }));
    return;
  }
  if (gen !== detailsSection.gen) return;
  const notes = r.notes || [];
  if (!notes.length) return put(list, h('li', { class: 'muted', text: 'No notes yet.' }));
  put(list, notes.map(n => h('li', { class: 'anno-note', dataset: { id: n.id } },
    h('p', { class: 'anno-note-body', dir: 'auto', text: n.body ?? n.text ?? '' }),
    h('span', { class: 'muted' }, `${n.author || 'someone'} · `, timeEl(n.created_at, dateTimeFmt)),
    h('button', { type: 'button', class: 'quiet anno-note-del', text: 'Delete', onclick: async () => {
      if (!confirm('Delete this note?')) return;
      try {
        await api(`/widgets/${state.widget.id}/visitor-notes/${encodeURIComponent(n.id)}`, { method: 'DELETE', raw: true });
        say('Note deleted.');
        loadNotes(list, s, gen, say);
        loadAnnotations();
      } catch (e) { say(`Could not delete the note: ${e.message}`, true); }
    } }))));
}

async function unban(s, ban, say) {
  let id = ban.id;
  try {
    if (id == null) {               // the annotations did not carry it: find it in the bans
      const r = await api(`/widgets/${state.widget.id}/bans`);
      const b = (r.bans || []).find(x => { const [k, key] = subjectOf(x); return k === s.kind && key === s.key; });
      id = b ? b.id : null;
    }
    if (id == null) return say('This ban is already lifted.', true);
    await api(`/widgets/${state.widget.id}/bans/${encodeURIComponent(id)}`, { method: 'DELETE', raw: true });
    say('Unbanned.');
    await loadAnnotations();
    fillSection();
  } catch (e) { say(`Could not unban: ${e.message}`, true); }
}
