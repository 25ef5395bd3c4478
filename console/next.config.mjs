// Static export served by the platform under /ui (serve_apps/console.py): no Node server at run time.
// Dynamic routes cannot be prerendered in an export, so pages take ids as query parameters
// (/ui/runs/view/?id=...). trailingSlash makes every page a directory with an index.html.
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
};

export default nextConfig;
