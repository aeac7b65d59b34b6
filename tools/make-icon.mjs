// Renders resources/icon.svg to resources/icon.png (512×512), the source electron-builder turns into
// each platform's icon format. Run after editing the SVG: `node tools/make-icon.mjs`.
import sharp from 'sharp';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const resources = join(dirname(fileURLToPath(import.meta.url)), '../resources');
const size = 512;

await sharp(join(resources, 'icon.svg'), { density: 72 })
  .resize(size, size)
  .png({ compressionLevel: 9 })
  .toFile(join(resources, 'icon.png'));
