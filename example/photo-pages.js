// The photo browser's pages: albums, an album's photos as a grid, one photo. Images point at this
// app's own routes, which stream Lightroom's renditions through: the browser never sees a token.
import { html } from './html.js'
import { layout } from './pages.js'

export function albumsPage ({ albums }) {
  return layout('Your albums', html`
<a class="back" href="/me">← Your account</a>
<h1>Your albums</h1>
<p class="lead">Straight from your Lightroom catalog, page after page.</p>
${albums.length === 0 && html`<p id="no-albums">No albums yet.</p>`}
<ul id="albums" class="albums">
${albums.map((album) => html`<li><a class="album" href="/albums/${album.id}">${album.payload?.name ?? 'Untitled album'}</a> <span class="hint">${album.subtype}</span></li>`)}
</ul>`)
}

export function albumPage ({ album, photos, uploaded }) {
  return layout(album.name, html`
<a class="back" href="/albums">← All albums</a>
<h1 id="album-name">${album.name}</h1>
<p class="lead">The newest ${photos.length} photos, as thumbnails streamed through this app.</p>
${uploaded && html`<p id="notice" class="notice" role="status">Your photo was uploaded to Lightroom.</p>`}
<form class="upload" method="post" action="/albums/${album.id}/upload" enctype="multipart/form-data">
  <input id="upload-file" type="file" name="photo" accept="image/jpeg" required>
  <button id="upload" class="button secondary" type="submit">Upload to this album</button>
</form>
<ul id="photos" class="grid">
${photos.map((photo) => html`<li><a class="photo-link" href="/photos/${photo.id}"><img src="/photos/${photo.id}/thumbnail2x" alt="${photo.payload?.importSource?.fileName ?? 'photo'}" width="160" height="107"></a></li>`)}
</ul>`)
}

export function photoPage ({ photo }) {
  const name = photo.payload?.importSource?.fileName ?? 'Photo'
  const captured = photo.payload?.captureDate
  return layout(name, html`
<h1 id="photo-name">${name}</h1>
<p class="lead">Captured ${captured && !captured.startsWith('0000') ? captured.replace('T', ' at ') : 'at an unknown time'}; shown at 2048 pixels.</p>
<img id="photo" class="photo" src="/photos/${photo.id}/2048" alt="${name}">
<div class="actions"><a class="button secondary" href="/albums">All albums</a></div>`)
}
