import { describe, expect, it } from 'vitest';
import {
  APP_ORIGIN,
  RENDERER_ENTRY_URL,
  dataDirFromArgs,
  dataFileRequestPath,
  decideNavigation,
  decideWindowOpen,
  externalLinkToOpen,
  isPermissionGranted,
  isRendererUrl,
  isRequestAllowed,
  isTrustedSender,
  rendererFileForUrl,
  windowBackgroundColor,
} from '../../main/electron/policy';

describe('renderer origin', () => {
  it('recognises the bundle and nothing else', () => {
    expect(APP_ORIGIN).toBe('app://studio');
    expect(isRendererUrl(RENDERER_ENTRY_URL)).toBe(true);
    expect(isRendererUrl('app://studio/assets/index-abc.js')).toBe(true);
    for (const url of ['app://other/index.html', 'app://studio:8080/index.html', 'app://user:pw@studio/index.html', 'https://studio/index.html', 'file:///index.html', 'studio-file://data/a.png', 'not a url', '']) {
      expect(isRendererUrl(url), url).toBe(false);
    }
  });
});

describe('navigation and new windows', () => {
  it('allows moving inside the bundle only', () => {
    expect(decideNavigation('app://studio/index.html#/gallery')).toEqual({ allow: true });
    expect(decideNavigation('file:///etc/passwd')).toEqual({ allow: false, openExternally: null });
    expect(decideNavigation('http://example.com/')).toEqual({ allow: false, openExternally: null });
    expect(decideNavigation('javascript:alert(1)')).toEqual({ allow: false, openExternally: null });
  });

  it('hands plain https links to the OS browser instead of navigating', () => {
    expect(decideNavigation('https://onnxruntime.ai/docs/')).toEqual({ allow: false, openExternally: 'https://onnxruntime.ai/docs/' });
    expect(decideWindowOpen('https://github.com/x/y')).toEqual({ openExternally: 'https://github.com/x/y' });
  });

  it('never opens credentials, other schemes or garbage externally', () => {
    for (const url of ['https://user:pw@example.com/', 'http://example.com/', 'file:///bin/sh', 'smb://host/share', 'mailto:a@b.c', 'ms-settings:', 'app://studio/x', '']) {
      expect(externalLinkToOpen(url), url).toBeNull();
    }
  });
});

describe('IPC sender', () => {
  const trusted = { fromOurWindow: true, fromMainFrame: true, frameUrl: RENDERER_ENTRY_URL };

  it('trusts only our window main frame showing the renderer', () => {
    expect(isTrustedSender(trusted)).toBe(true);
    expect(isTrustedSender({ ...trusted, fromOurWindow: false })).toBe(false);
    expect(isTrustedSender({ ...trusted, fromMainFrame: false })).toBe(false);
    expect(isTrustedSender({ ...trusted, frameUrl: null })).toBe(false);
    expect(isTrustedSender({ ...trusted, frameUrl: 'https://evil.example/' })).toBe(false);
    expect(isTrustedSender({ ...trusted, frameUrl: 'devtools://devtools/bundled/inspector.html' })).toBe(false);
  });
});

describe('permissions', () => {
  it('grants only clipboard writes, and only to the renderer', () => {
    expect(isPermissionGranted('clipboard-sanitized-write', RENDERER_ENTRY_URL)).toBe(true);
    expect(isPermissionGranted('clipboard-sanitized-write', APP_ORIGIN)).toBe(true);
    expect(isPermissionGranted('clipboard-sanitized-write', 'https://evil.example')).toBe(false);
    expect(isPermissionGranted('clipboard-sanitized-write', undefined)).toBe(false);
    for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'hid', 'serial', 'usb', 'fullscreen', 'unknown']) {
      expect(isPermissionGranted(permission, RENDERER_ENTRY_URL), permission).toBe(false);
    }
  });
});

describe('network requests', () => {
  it('lets pages reach the bundle, data files and inline data only', () => {
    for (const url of ['app://studio/index.html', 'studio-file://data/photos/1.png', 'data:image/png;base64,AAAA', 'blob:app://studio/1234', 'devtools://devtools/x']) {
      expect(isRequestAllowed(url, true), url).toBe(true);
    }
    for (const url of ['https://example.com/', 'http://127.0.0.1:8080/', 'ws://127.0.0.1/', 'file:///etc/passwd', 'ftp://x/', 'garbage']) {
      expect(isRequestAllowed(url, true), url).toBe(false);
    }
  });

  it('leaves requests that main makes itself alone', () => {
    expect(isRequestAllowed('https://huggingface.co/model.safetensors', false)).toBe(true);
  });
});

describe('app:// paths', () => {
  it('maps URLs to files inside the renderer folder', () => {
    expect(rendererFileForUrl('app://studio/')).toBe('index.html');
    expect(rendererFileForUrl('app://studio')).toBe('index.html');
    expect(rendererFileForUrl('app://studio/index.html?x=1#top')).toBe('index.html');
    expect(rendererFileForUrl('app://studio/assets/index-abc.js')).toBe('assets/index-abc.js');
    expect(rendererFileForUrl('app://studio/assets/a%20b.css')).toBe('assets/a b.css');
    // The URL parser folds dot segments, even encoded ones, before we see them.
    expect(rendererFileForUrl('app://studio/assets/../../../etc/passwd')).toBe('etc/passwd');
    expect(rendererFileForUrl('app://studio/%2e%2e/x.js')).toBe('x.js');
  });

  it('refuses what could leave the folder or is not ours', () => {
    for (const url of ['app://studio/a%2F..%2F..%2Fetc/passwd', 'app://studio/..%5C..%5Cwin.ini', 'app://studio/a%00.js', 'app://studio/assets//x.js', 'app://studio/bad%E0%A4%A', 'app://other/index.html', 'studio-file://data/x.png']) {
      expect(rendererFileForUrl(url), url).toBeNull();
    }
  });
});

describe('studio-file:// paths', () => {
  it('passes the still-encoded relative path on to resolveDataFile', () => {
    expect(dataFileRequestPath('studio-file://data/photos/a%20b.png')).toBe('photos/a%20b.png');
    expect(dataFileRequestPath('studio-file://data/x.png?v=2')).toBe('x.png');
  });

  it('refuses other hosts, schemes and credentials', () => {
    for (const url of ['studio-file://other/x.png', 'studio-file://u:p@data/x.png', 'studio-file://data:1/x.png', 'app://studio/x.png', 'file:///x.png', 'nonsense']) {
      expect(dataFileRequestPath(url), url).toBeNull();
    }
  });
});

describe('--data-dir', () => {
  it('reads both spellings and ignores a missing value', () => {
    expect(dataDirFromArgs(['electron', '.', '--data-dir', '/tmp/d'])).toBe('/tmp/d');
    expect(dataDirFromArgs(['electron', '.', '--data-dir=rel/d'])).toBe('rel/d');
    expect(dataDirFromArgs(['electron', '.'])).toBeNull();
    expect(dataDirFromArgs(['electron', '.', '--data-dir'])).toBeNull();
    expect(dataDirFromArgs(['electron', '.', '--data-dir', '--inspect'])).toBeNull();
    expect(dataDirFromArgs(['electron', '.', '--data-dir='])).toBeNull();
  });
});

describe('window background', () => {
  it('follows the OS theme', () => {
    expect(windowBackgroundColor(true)).not.toBe(windowBackgroundColor(false));
  });
});
