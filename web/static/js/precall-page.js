// /precall: the device check alone (no connection test: it needs a consultation credential).
import './client-errors.js';
import { $ } from './dom.js';
import { PreCall } from './precall.js';

const root = $('precall-app');
new PreCall({ chime: root.dataset.chime, networkCheck: false }).run();
