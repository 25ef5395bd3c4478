// Static export served by the platform under /ui (serve_apps/console.py): no Node server at run time.
// Dynamic routes cannot be prerendered in an export, so pages take ids as query parameters
// (/ui/runs/view/?id=...). trailingSlash makes every page a directory with an index.html.
import { fileURLToPath } from 'node:url';

/** @type {import('next').NextConfig} */
const nextConfig = {
  output: 'export',
  basePath: '/ui',
  trailingSlash: true,
  reactStrictMode: true,
  poweredByHeader: false,
  images: { unoptimized: true },
  // The CSP allows no inline style attributes; keep the build from emitting any dev-only helpers.
  productionBrowserSourceMaps: false,
  webpack(config) {
    // react-remove-scroll-bar injects a run-time <style> the CSP must refuse; the shim does the same
    // through element.style (src/shims/remove-scroll-bar.ts).
    config.resolve.alias = {
      ...config.resolve.alias,
      'react-remove-scroll-bar$': fileURLToPath(new URL('./src/shims/remove-scroll-bar.ts', import.meta.url)),
    };
    return config;
  },
};

export default nextConfig;
