// The service worker's push and notificationclick handlers (written by h4); sw.js loads this
// file with importScripts. Placeholder: no handlers yet.
