"""The page at `/`: drop or choose an image, see it with its top-5 classes as bars. Class names
are inserted as text (textContent), never as HTML."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deepres</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
#drop{border:2px dashed #888;border-radius:8px;padding:2rem;text-align:center;cursor:pointer}
#drop.over{background:#eef}
img{max-width:100%;max-height:16rem;display:block;margin:1rem auto}
.row{display:flex;align-items:center;margin:.3rem 0}
.name{width:12rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar{height:1rem;background:#46c;margin:0 .5rem}
#error{color:#b00}
</style></head><body>
<h1>deepres</h1>
<p id="model"></p>
<div id="drop">Drop an image here, or <label><u>choose one</u>
<input id="file" type="file" accept="image/*" hidden></label></div>
<img id="preview" alt="" hidden>
<div id="result"></div><p id="error"></p>
<script>
const drop = document.getElementById('drop'), file = document.getElementById('file');
fetch('/v1/model').then(r => r.json()).then(m => {
  document.getElementById('model').textContent =
    `${m.model} (${(m.classes || []).length} classes, ${m.precision})`;
});
async function classify(f) {
  const preview = document.getElementById('preview');
  preview.src = URL.createObjectURL(f); preview.hidden = false;
  document.getElementById('error').textContent = '';
  const result = document.getElementById('result'); result.textContent = '';
  const r = await fetch('/v1/predict?top_k=5', {method: 'POST', body: f,
                        headers: {'Content-Type': f.type || 'application/octet-stream'}});
  const j = await r.json();
  if (!r.ok) { document.getElementById('error').textContent = j.error.message; return; }
  for (const p of j.results[0].predictions) {
    const row = document.createElement('div'); row.className = 'row prediction';
    const name = document.createElement('span'); name.className = 'name';
    name.textContent = p.class;
    const bar = document.createElement('span'); bar.className = 'bar';
    bar.style.width = (p.probability * 15) + 'rem';
    const pct = document.createElement('span'); pct.className = 'pct';
    pct.textContent = (100 * p.probability).toFixed(1) + '%';
    row.append(name, bar, pct); result.append(row);
  }
  result.dataset.done = '1';
}
file.addEventListener('change', () => file.files[0] && classify(file.files[0]));
drop.addEventListener('click', () => file.click());
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over');
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]); });
</script></body></html>
"""
