// The photo browser: what a partner builds on request.lightroomApi(). Renditions are streamed from
// Lightroom through these routes (never buffered, never cached by a shared proxy); uploads arrive
// as a multipart form and go to Lightroom in parts.
import { albumPage, albumsPage, photoPage } from './photo-pages.js'

const GRID_SIZE = 48
const MAX_UPLOAD_BYTES = 20 * 1024 * 1024
const TYPES = new Set(['thumbnail2x', '640', '1280', '2048'])

export function photoRoutes (app, sendPage) {
  const signedIn = { preHandler: app.lightroom.requireLogin }

  // Forms with a file are multipart; the demo needs only the one file field, so a small parser does.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES + 64 * 1024 }, (request, body, done) => {
    done(null, fileFromMultipart(request.headers['content-type'], body))
  })

  app.get('/albums', signedIn, async (request, reply) => {
    const albums = []
    for await (const album of request.lightroomApi().albums({ limit: 100 })) {
      if (album.subtype !== 'collection_set' && album.subtype !== 'project_set') albums.push(album)
    }
    reply.header('cache-control', 'no-store')
    return sendPage(reply, albumsPage({ albums }))
  })

  app.get('/albums/:id', signedIn, async (request, reply) => {
    const lightroom = request.lightroomApi()
    let name
    for await (const album of lightroom.albums({ limit: 500 })) if (album.id === request.params.id) name = album.payload?.name
    if (name === undefined) return reply.callNotFound()
    const photos = []
    for await (const photo of lightroom.albumAssets(request.params.id, { subtype: ['image'], limit: GRID_SIZE })) {
      photos.push(photo)
      if (photos.length === GRID_SIZE) break
    }
    reply.header('cache-control', 'no-store')
    return sendPage(reply, albumPage({ album: { id: request.params.id, name }, photos, uploaded: request.query.uploaded === '1' }))
  })

  app.get('/photos/:id', signedIn, async (request, reply) => {
    const photo = await request.lightroomApi().asset(request.params.id)
    if (photo === null) return reply.callNotFound()
    reply.header('cache-control', 'no-store')
    return sendPage(reply, photoPage({ photo }))
  })

  app.get('/photos/:id/:type', signedIn, async (request, reply) => {
    if (!TYPES.has(request.params.type)) return reply.callNotFound()
    const rendition = await request.lightroomApi().rendition(request.params.id, request.params.type)
    if (rendition === null) return reply.callNotFound()
    // The user's own photo: the browser may keep it, a shared cache may not.
    reply.type(rendition.contentType).header('cache-control', 'private, max-age=3600')
    if (rendition.contentLength !== undefined) reply.header('content-length', rendition.contentLength)
    return reply.send(rendition.body)
  })

  app.post('/albums/:id/upload', signedIn, async (request, reply) => {
    const file = request.body
    if (file === undefined || file.bytes.length === 0) return reply.code(400).send({ error: 'choose a JPEG file' })
    const { assetId } = await request.lightroomApi().uploadAsset({
      body: file.bytes,
      size: file.bytes.length,
      fileName: file.fileName,
      contentType: 'image/jpeg',
      albumId: request.params.id
    })
    request.log.info({ assetId }, 'photo uploaded to Lightroom')
    return reply.redirect(`/albums/${request.params.id}?uploaded=1`, 303)
  })
}

/** The first file of a multipart/form-data body: { fileName, bytes }, or undefined. */
function fileFromMultipart (contentType, body) {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '')
  if (boundary === null) return undefined
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`)
  let at = body.indexOf(delimiter)
  while (at !== -1) {
    const headersEnd = body.indexOf('\r\n\r\n', at)
    const next = body.indexOf(delimiter, headersEnd)
    if (headersEnd === -1 || next === -1) return undefined
    const headers = body.subarray(at, headersEnd).toString('utf8')
    const name = /filename="([^"]*)"/i.exec(headers)
    if (name !== null) {
      // The file name is the browser's: keep its last segment, and only plain characters.
      const fileName = (name[1].split(/[\\/]/).pop() || 'upload.jpg').replace(/[^\w .()-]/g, '_').slice(0, 200) || 'upload.jpg'
      return { fileName, bytes: body.subarray(headersEnd + 4, next - 2) }
    }
    at = next
  }
  return undefined
}
