// /precall: the device check alone (no connection test: it needs a consultation credential).
import { loadStrings } from './i18n-client.js';
import { PreCall } from './precall.js';

loadStrings();
const root = document.getElementById('precall-app');
new PreCall({ chime: root.dataset.chime, networkCheck: false }).run();
