// Vite turns CSS imports into <link>s; tsc only needs to know they exist.
declare module '*.css';
