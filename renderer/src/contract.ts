/**
 * The one place in the renderer that knows where the API contract lives. Everything else imports the
 * contract's types and name tables from here.
 */
export * from '../../main/api/contract';
