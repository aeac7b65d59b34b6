import './styles/app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { Studio, studioContext } from './state/studio.svelte';
import { showStartupFailure } from './startup-failure';
import { pickTransport } from './transport/pick-transport';

const target = document.getElementById('app');
if (target === null) throw new Error('index.html has no #app element.');

try {
  const studio = new Studio(pickTransport(window), window);
  mount(App, { target, context: studioContext(studio) });
} catch (error) {
  showStartupFailure(target, error);
}
